package io.qlora4j.data;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Set;

/**
 * A chat template as LLaMA-Factory registers it ({@code register_template}): slot formatters for
 * each role, a prefix, a default system prompt, stop words and the eos handling flags. Encoding
 * follows {@code Template._encode}: turn 0 = prefix + system + first user message, every text slot
 * encoded separately without special tokens, bos/eos inserted as ids.
 */
public final class ChatTemplate {

    private final String name;
    private final SlotFormatter user;
    private final SlotFormatter assistant;
    private final SlotFormatter system;
    private final SlotFormatter observation;
    private final SlotFormatter function;
    private final ToolFormat toolFormat;
    private final SlotFormatter prefix;
    private final String defaultSystem;
    private final List<String> stopWords;
    private final boolean replaceEos;
    private final boolean systemInFirstUser;

    private ChatTemplate(Builder b) {
        this.name = b.name;
        SlotFormatter content = SlotFormatter.of(SlotFormatter.PLACEHOLDER);
        this.user = b.user != null ? b.user : content;
        this.assistant = b.assistant != null ? b.assistant : SlotFormatter.of(SlotFormatter.PLACEHOLDER, Slot.EOS);
        this.system = b.system != null ? b.system : content;
        this.observation = b.observation != null ? b.observation : this.user;
        this.function = b.function != null ? b.function : this.assistant;
        this.toolFormat = b.toolFormat;
        this.prefix = b.prefix != null ? b.prefix : SlotFormatter.of();
        this.defaultSystem = b.defaultSystem;
        this.stopWords = List.copyOf(b.stopWords);
        this.replaceEos = b.replaceEos;
        this.systemInFirstUser = b.systemInFirstUser;
    }

    /** The template registered under {@code name}; unknown names fail listing the known ones. */
    public static ChatTemplate named(String name) throws DataException {
        ChatTemplate template = ChatTemplates.ALL.get(name);
        if (template == null) {
            throw new DataException("template: unknown template '" + name + "'; known: "
                    + String.join(", ", ChatTemplates.ALL.keySet()));
        }
        return template;
    }

    /**
     * The template {@code name}, or for {@code auto} the known template whose shape the
     * {@code chat_template} of the tokenizer_config.json beside {@code tokenizerFile} has.
     */
    public static ChatTemplate resolve(String name, Path tokenizerFile) throws DataException {
        return named("auto".equals(name) ? ChatTemplateDetector.detect(tokenizerFile.resolveSibling("tokenizer_config.json"))
                : name);
    }

    /** The names of all templates, sorted. */
    public static Set<String> names() {
        return ChatTemplates.ALL.keySet();
    }

    /** The template's registered name. */
    public String name() {
        return name;
    }

    /** The system prompt used when a record has none. */
    public String defaultSystem() {
        return defaultSystem;
    }

    /**
     * The tokenizer as this template uses it ({@code fix_special_tokens}): eos replaced by the
     * first stop word where the template says so, {@code <|endoftext|>} when there is no eos.
     */
    public TemplateTokenizer bind(TemplateTokenizer tokenizer) throws DataException {
        String eos = null;
        if (replaceEos) {
            eos = stopWords.get(0);
        } else if (tokenizer.eosId() < 0) {
            eos = "<|endoftext|>";
        }
        if (eos == null || eos.equals(tokenizer.eosToken())) {
            return tokenizer;
        }
        final String token = eos;
        int id = tokenizer.tokenId(token).orElseThrow(() -> new DataException("template " + name + ": eos token '"
                + token + "' is not a token of this tokenizer.json"));
        return tokenizer.withEos(token, id);
    }

    /**
     * Encodes a conversation to (prompt, response) id pairs, one per user/assistant exchange, as
     * {@code Template.encode_multiturn}; {@code tokenizer} must be {@link #bind bound}.
     */
    List<int[][]> encodeMultiturn(TemplateTokenizer tokenizer, Conversation conversation) {
        List<int[]> encoded = encode(tokenizer, conversation);
        List<int[][]> pairs = new ArrayList<>(encoded.size() / 2);
        for (int i = 0; i + 1 < encoded.size(); i += 2) {
            pairs.add(new int[][] {encoded.get(i), encoded.get(i + 1)});
        }
        return pairs;
    }

    private List<int[]> encode(TemplateTokenizer tokenizer, Conversation conversation) {
        String systemText = conversation.system().isEmpty() ? defaultSystem : conversation.system();
        List<Message> messages = conversation.messages();
        List<int[]> encoded = new ArrayList<>(messages.size());
        for (int i = 0; i < messages.size(); i++) {
            Message message = messages.get(i);
            List<Slot> elements = new ArrayList<>();
            String fused = "";
            if (i == 0) {
                elements.addAll(prefix.apply(""));
                String tools = conversation.tools();
                if (!systemText.isEmpty() || !tools.isEmpty()) {
                    String toolText = tools.isEmpty() ? "" : toolFormat.describe(tools);
                    List<Slot> systemSlots = system.apply(systemText + toolText);
                    if (systemInFirstUser) {
                        fused = systemSlots.get(0).text();
                    } else {
                        elements.addAll(systemSlots);
                    }
                }
            }
            switch (message.role()) {
                case USER -> elements.addAll(user.apply(fused + message.content()));
                case ASSISTANT -> elements.addAll(assistant.apply(message.content()));
                case OBSERVATION -> elements.addAll(observation.apply(message.content()));
                case FUNCTION -> elements.addAll(function.apply(toolFormat.call(message.content(), !systemInFirstUser)));
                case SYSTEM -> throw new IllegalArgumentException("a system message inside the conversation");
            }
            encoded.add(toIds(tokenizer, elements));
        }
        return encoded;
    }

    private static int[] toIds(TemplateTokenizer tokenizer, List<Slot> elements) {
        IntList ids = new IntList();
        for (Slot slot : elements) {
            switch (slot.kind()) {
                case TEXT -> ids.addAll(tokenizer.encode(slot.text()));
                case BOS -> {
                    if (tokenizer.bosId() >= 0) {
                        ids.add(tokenizer.bosId());
                    }
                }
                case EOS -> {
                    if (tokenizer.eosId() >= 0) {
                        ids.add(tokenizer.eosId());
                    }
                }
            }
        }
        return ids.toArray();
    }

    /** Collects a template's definition; unset formatters take register_template's defaults. */
    static final class Builder {
        private final String name;
        private SlotFormatter user;
        private SlotFormatter assistant;
        private SlotFormatter system;
        private SlotFormatter observation;
        private SlotFormatter function;
        private ToolFormat toolFormat = ToolFormat.DEFAULT;
        private SlotFormatter prefix;
        private String defaultSystem = "";
        private List<String> stopWords = List.of();
        private boolean replaceEos;
        private boolean systemInFirstUser;

        Builder(String name) {
            this.name = name;
        }

        Builder user(Object... slots) {
            user = SlotFormatter.of(slots);
            return this;
        }

        Builder assistant(Object... slots) {
            assistant = SlotFormatter.of(slots);
            return this;
        }

        Builder system(Object... slots) {
            system = SlotFormatter.of(slots);
            return this;
        }

        Builder observation(Object... slots) {
            observation = SlotFormatter.of(slots);
            return this;
        }

        /** The function-call turn's slots; by default the assistant's. */
        Builder function(Object... slots) {
            function = SlotFormatter.of(slots);
            return this;
        }

        Builder toolFormat(ToolFormat format) {
            toolFormat = format;
            return this;
        }

        Builder prefix(Object... slots) {
            prefix = SlotFormatter.of(slots);
            return this;
        }

        Builder defaultSystem(String text) {
            defaultSystem = text;
            return this;
        }

        Builder stopWords(String... words) {
            stopWords = List.of(words);
            return this;
        }

        Builder replaceEos() {
            replaceEos = true;
            return this;
        }

        /** LLaMA-Factory's Llama2Template: the formatted system text is prepended to the first user message. */
        Builder systemInFirstUser() {
            systemInFirstUser = true;
            return this;
        }

        ChatTemplate build() {
            return new ChatTemplate(this);
        }
    }
}
