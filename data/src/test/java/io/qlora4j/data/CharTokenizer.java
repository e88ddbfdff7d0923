package io.qlora4j.data;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;

/**
 * Writes a character-level tokenizer.json for template tests: every character is one token, and a model
 * family's special tokens (given) are added tokens, matched whole as Hugging Face tokenizers match them. With
 * one id per character, two id sequences are equal exactly when their texts are, so a test can state the
 * expected ids as the text LLaMA-Factory's template definition produces and {@link #render} compares them.
 */
final class CharTokenizer {

    /** The characters besides the special tokens: printable ASCII, newline and the Chinese of the test records. */
    private static final String CHARS = charset();

    private static final ObjectMapper JSON = new ObjectMapper();

    private final List<String> vocab;

    private CharTokenizer(List<String> vocab) {
        this.vocab = vocab;
    }

    private static String charset() {
        StringBuilder chars = new StringBuilder("\n");
        for (char c = ' '; c <= '~'; c++) {
            chars.append(c);
        }
        return chars.append("你是助手好！有什么可以帮？谢再见").toString();
    }

    /**
     * Writes tokenizer.json (the special tokens first, ids 0.., then one token per character) and a
     * tokenizer_config.json with {@code config} into {@code dir}.
     */
    static CharTokenizer write(Path dir, List<String> specials, Map<String, Object> config) throws IOException {
        List<String> vocab = new ArrayList<>(specials);
        CHARS.codePoints().forEach(c -> vocab.add(Character.toString(c)));
        ObjectNode root = JSON.createObjectNode();
        root.put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        ArrayNode added = root.putArray("added_tokens");
        for (int i = 0; i < specials.size(); i++) {
            added.addObject().put("id", i).put("content", specials.get(i)).put("single_word", false)
                    .put("lstrip", false).put("rstrip", false).put("normalized", false).put("special", true);
        }
        root.putNull("normalizer");
        ObjectNode split = root.putObject("pre_tokenizer").put("type", "Split").put("behavior", "Isolated")
                .put("invert", false);
        split.putObject("pattern").put("Regex", "[\\s\\S]");
        root.putNull("post_processor");
        TinyTokenizer.writeWordLevel(dir, root, vocab, "?", config);
        return new CharTokenizer(vocab);
    }

    /** The text of the ids: each id's token. */
    String text(int[] ids) {
        StringBuilder text = new StringBuilder();
        for (int id : ids) {
            text.append(vocab.get(id));
        }
        return text.toString();
    }

    /**
     * An example as text with its trained tokens between guillemets; a trained token whose label is another
     * token (gemma2's eos on the first prompt token) is written {@code {input->label}}.
     */
    String render(Example example) {
        StringBuilder text = new StringBuilder();
        boolean open = false;
        for (int i = 0; i < example.length(); i++) {
            int id = example.inputIds()[i];
            int label = example.labels()[i];
            boolean trained = label != Example.IGNORE_INDEX;
            if (trained != open) {
                text.append(trained ? '\u00ab' : '\u00bb');
                open = trained;
            }
            text.append(trained && label != id ? "{" + vocab.get(id) + "->" + vocab.get(label) + "}" : vocab.get(id));
        }
        return open ? text.append('\u00bb').toString() : text.toString();
    }
}
