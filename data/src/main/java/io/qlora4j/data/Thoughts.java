package io.qlora4j.data;

import java.util.regex.Pattern;

/**
 * The thought block of reasoning templates, as LLaMA-Factory's default {@code thought_words}
 * ({@code "<think>\n"}, {@code "\n</think>\n\n"}): how a block is recognised in a message, removed from it
 * ({@code Template.remove_thought}) and written empty ({@code Template.add_thought}).
 */
final class Thoughts {
    static final String OPEN = "<think>\n";
    static final String CLOSE = "\n</think>\n\n";

    /** One whole block, its text in group 1 (DOTALL, shortest match, as Python's {@code (.*?)}). */
    static final Pattern BLOCK = Pattern.compile(Pattern.quote(OPEN) + "(.*?)" + Pattern.quote(CLOSE), Pattern.DOTALL);

    /** The empty block {@code "<think>\n\n</think>\n\n"}, encoded as one text when a turn has none. */
    static final String EMPTY = OPEN + CLOSE;

    private Thoughts() {
    }

    /** Whether the text holds either tag (LLaMA-Factory tests the stripped words {@code <think>} and {@code </think>}). */
    static boolean mentioned(String content) {
        return content.contains(OPEN.strip()) || content.contains(CLOSE.strip());
    }

    /** The text with every block removed and leading newlines stripped. */
    static String remove(String content) {
        String removed = BLOCK.matcher(content).replaceAll("");
        int start = 0;
        while (start < removed.length() && removed.charAt(start) == '\n') {
            start++;
        }
        return removed.substring(start);
    }
}
