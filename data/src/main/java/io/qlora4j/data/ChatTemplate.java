package io.qlora4j.data;

import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * A chat template as LLaMA-Factory registers it ({@code register_template}): slot formatters for
 * each role, a prefix, a default system prompt, stop words and the eos handling flags. Encoding
 * follows {@code Template._encode}: turn 0 = prefix + system + first user message, every text slot
 * encoded separately without special tokens, bos/eos inserted as ids. Two of LLaMA-Factory's template
 * classes are flags here: {@code Llama2Template} ({@link Builder#systemInFirstUser}) and
 * {@code ReasoningTemplate} ({@link Builder#reasoning}: empty thought blocks added, thoughts removed
 * when thinking is off).
 */
public final class ChatTemplate {

    private final String name;
    private final SlotFormatter user;
    private final SlotFormatter assistant;
    private final SlotFormatter system;
    private final SlotFormatter observation;
    private final SlotFormatter function;
    private final ToolFormat toolFormat;
    private final SlotFormatter toolsSlot;
    private final SlotFormatter prefix;
    private final String defaultSystem;
    private final List<String> stopWords;
    private final boolean replaceEos;
    private final boolean systemInFirstUser;
    private final boolean efficientEos;
    private final boolean reasoning;
    private final boolean enableThinking;
    private final boolean fromTokenizer;
    private final boolean replaceJinjaTemplate;

    private ChatTemplate(Builder b) {
        this.name = b.name;
        SlotFormatter content = SlotFormatter.of(SlotFormatter.PLACEHOLDER);
        this.user = b.user != null ? b.user : content;
        this.assistant = b.assistant != null ? b.assistant : defaultAssistant(b.efficientEos);
        this.system = b.system != null ? b.system : content;
        this.observation = b.observation != null ? b.observation : this.user;
        this.function = b.function != null ? b.function : this.assistant;
        this.toolFormat = b.toolFormat;
        this.toolsSlot = b.toolsSlot;
        this.prefix = b.prefix != null ? b.prefix : SlotFormatter.of();
        this.defaultSystem = b.defaultSystem;
        this.stopWords = List.copyOf(b.stopWords);
        this.replaceEos = b.replaceEos;
        this.systemInFirstUser = b.systemInFirstUser;
        this.efficientEos = b.efficientEos;
        this.reasoning = b.reasoning;
        this.enableThinking = b.enableThinking;
        this.fromTokenizer = b.fromTokenizer;
        this.replaceJinjaTemplate = b.replaceJinjaTemplate;
    }

    /** register_template's assistant (and function) slots when a template gives none. */
    private static SlotFormatter defaultAssistant(boolean efficientEos) {
        return efficientEos ? SlotFormatter.of(SlotFormatter.PLACEHOLDER) : SlotFormatter.of(SlotFormatter.PLACEHOLDER, Slot.EOS);
    }

    /**
     * The template registered under {@code name}; LLaMA-Factory's templates qlora4j lacks and unknown names fail
     * listing the implemented ones.
     */
    public static ChatTemplate named(String name) throws DataException {
        ChatTemplate template = ChatTemplates.ALL.get(name);
        if (template == null) {
            throw new DataException("template: " + (ChatTemplates.NOT_IMPLEMENTED.contains(name)
                    ? "LLaMA-Factory's template '" + name + "' is not implemented; implemented: "
                    : "unknown template '" + name + "'; known: ") + String.join(", ", ChatTemplates.ALL.keySet()));
        }
        return template;
    }

    /**
     * The template {@code name}; for {@code auto} the known template whose shape the chat template of the tokenizer
     * beside {@code tokenizerFile} has; for null (no {@code template} key) what LLaMA-Factory does then, as far as
     * qlora4j can: the {@code empty} template when the tokenizer has no chat template or named ones (transformers
     * makes those a dict, which LLaMA-Factory does not parse); else, where LLaMA-Factory's {@code parse_template}
     * renders the Jinja into slots, qlora4j (which runs no Jinja) takes the known template of the same shape, with the
     * tokenizer's eos and no stop words as {@code parse_template} keeps them. The choice made for null goes to
     * {@code log}.
     */
    public static ChatTemplate resolve(String name, Path tokenizerFile, Consumer<String> log) throws DataException {
        Path tokenizerConfig = tokenizerFile.resolveSibling("tokenizer_config.json");
        if (name == null) {
            ChatTemplateDetector.Found found = ChatTemplateDetector.read(tokenizerConfig);
            if (found.text() == null || found.named()) {
                log.accept("template: not set and " + found.source() + (found.named()
                        ? " holds named chat templates" : " has no chat_template") + ": using empty, as LLaMA-Factory"
                        + " does");
                return named("empty");
            }
            String shape = ChatTemplateDetector.shape(found.text(), tokenizerConfig,
                    "template: not set and the chat_template in " + found.source());
            log.accept("template: not set: using " + shape + ", recognised from the chat_template in "
                    + found.source() + " (LLaMA-Factory would render that Jinja into its own slots instead; set"
                    + " template: " + shape + " to train as LLaMA-Factory does with it)");
            return named(shape).toBuilder().recognisedFromTokenizer().build();
        }
        return named("auto".equals(name) ? ChatTemplateDetector.detect(tokenizerConfig) : name);
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
     * This template with the data keys that adjust a template, as LLaMA-Factory's
     * {@code get_template_and_fix_tokenizer} applies them: {@code default_system} (null: keep),
     * {@code tool_format} (null: keep; else function calls become {@code {{content}}} + eos in that format and
     * tools are described in it) and, for reasoning templates, {@code enable_thinking}.
     */
    ChatTemplate configured(String systemPrompt, String toolFormatName, boolean thinking) throws DataException {
        Builder b = toBuilder();
        if (systemPrompt != null) {
            b.defaultSystem(systemPrompt);
        }
        if (toolFormatName != null) {
            b.toolFormat(ToolFormat.named(toolFormatName));
            b.function = defaultAssistant(efficientEos);
            b.toolsSlot = null;
        }
        b.enableThinking = thinking;
        return b.build();
    }

    /** The words that end an answer besides the eos (the first becomes the eos where the template replaces it). */
    List<String> stopWords() {
        return stopWords;
    }

    /** The prefix, system, user and assistant slots, as the export writes them out ({@link TemplateExport}). */
    SlotFormatter prefix() {
        return prefix;
    }

    SlotFormatter system() {
        return system;
    }

    SlotFormatter user() {
        return user;
    }

    SlotFormatter assistant() {
        return assistant;
    }

    /** Llama 2's layout: the system text opens the first user message. */
    boolean systemInFirstUser() {
        return systemInFirstUser;
    }

    /** Whether an export writes this template as the chat template even over the tokenizer's own. */
    boolean replacesJinjaTemplate() {
        return replaceJinjaTemplate;
    }

    /**
     * The ids that end an answer over {@code bound} (a tokenizer {@link #bind bound} to this template): its eos and
     * the stop words that are tokens of it, as {@code Template.get_stop_token_ids}.
     */
    Set<Integer> stopIds(TemplateTokenizer bound) {
        Set<Integer> ids = new LinkedHashSet<>();
        if (bound.eosId() >= 0) {
            ids.add(bound.eosId());
        }
        for (String word : stopWords) {
            bound.tokenId(word).ifPresent(ids::add);
        }
        return Collections.unmodifiableSet(ids);
    }

    /** Whether the template ends an example with one eos after the last turn instead of after each answer (gemma2). */
    boolean efficientEos() {
        return efficientEos;
    }

    /** Whether this template was recognised from the tokenizer's chat template rather than named by the job. */
    boolean recognisedFromTokenizer() {
        return fromTokenizer;
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
     * {@code Template.encode_multiturn}; {@code tokenizer} must be {@link #bind bound}. A reasoning template
     * removes every thought block when thinking is off, with {@code discardHistoryThoughts} those of all but the
     * last answer, and gives each answer without a block the empty one: in the prompt when thinking is off
     * (not trained), at the start of the answer when it is on (trained); with {@code discardHistoryThoughts} only
     * the last answer gets one.
     */
    List<int[][]> encodeMultiturn(TemplateTokenizer tokenizer, Conversation conversation,
            boolean discardHistoryThoughts) {
        List<Message> messages = conversation.messages();
        boolean discard = reasoning && discardHistoryThoughts;
        if (reasoning) {
            List<Message> edited = new ArrayList<>(messages);
            for (int i = 1; i < edited.size(); i += 2) {
                boolean history = i < edited.size() - 2;
                if (!enableThinking || (discard && history)) {
                    edited.set(i, new Message(edited.get(i).role(), Thoughts.remove(edited.get(i).content())));
                }
            }
            messages = edited;
        }
        List<int[]> encoded = encode(tokenizer, conversation, messages);
        List<int[][]> pairs = new ArrayList<>(encoded.size() / 2);
        int[] thought = reasoning ? tokenizer.encode(Thoughts.EMPTY) : null;
        for (int i = 0; i + 1 < encoded.size(); i += 2) {
            int[] prompt = encoded.get(i);
            int[] response = encoded.get(i + 1);
            boolean gets = reasoning && (!discard || i == encoded.size() - 2)
                    && !Thoughts.mentioned(messages.get(i + 1).content());
            if (gets && enableThinking) {
                response = concat(thought, response);
            } else if (gets) {
                prompt = concat(prompt, thought);
            }
            pairs.add(new int[][] {prompt, response});
        }
        return pairs;
    }

    private static int[] concat(int[] a, int[] b) {
        int[] out = Arrays.copyOf(a, a.length + b.length);
        System.arraycopy(b, 0, out, a.length, b.length);
        return out;
    }

    private List<int[]> encode(TemplateTokenizer tokenizer, Conversation conversation, List<Message> messages) {
        String systemText = conversation.system().isEmpty() ? defaultSystem : conversation.system();
        List<int[]> encoded = new ArrayList<>(messages.size());
        for (int i = 0; i < messages.size(); i++) {
            Message message = messages.get(i);
            List<Slot> elements = new ArrayList<>();
            String fused = "";
            if (i == 0) {
                elements.addAll(prefix.apply(""));
                String tools = conversation.tools();
                if (!systemText.isEmpty() || !tools.isEmpty()) {
                    String toolText = tools.isEmpty() ? ""
                            : toolsSlot != null ? toolsSlot.apply(tools).get(0).text() : toolFormat.describe(tools);
                    List<Slot> systemSlots = system.apply(systemText + toolText);
                    if (systemInFirstUser) {
                        fused = systemSlots.get(0).text();
                    } else {
                        elements.addAll(systemSlots);
                    }
                }
            }
            switch (message.role()) {
                // the Llama-2 kind (system fused into the first user turn) passes no turn index, as in LLaMA-Factory
                case USER -> elements.addAll(systemInFirstUser ? user.apply(fused + message.content())
                        : user.apply(message.content(), String.valueOf(i / 2)));
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

    private Builder toBuilder() {
        Builder b = new Builder(name);
        b.user = user;
        b.assistant = assistant;
        b.system = system;
        b.observation = observation;
        b.function = function;
        b.toolFormat = toolFormat;
        b.toolsSlot = toolsSlot;
        b.prefix = prefix;
        b.defaultSystem = defaultSystem;
        b.stopWords = stopWords;
        b.replaceEos = replaceEos;
        b.systemInFirstUser = systemInFirstUser;
        b.efficientEos = efficientEos;
        b.reasoning = reasoning;
        b.enableThinking = enableThinking;
        b.fromTokenizer = fromTokenizer;
        b.replaceJinjaTemplate = replaceJinjaTemplate;
        return b;
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
        private SlotFormatter toolsSlot;
        private SlotFormatter prefix;
        private String defaultSystem = "";
        private List<String> stopWords = List.of();
        private boolean replaceEos;
        private boolean systemInFirstUser;
        private boolean efficientEos;
        private boolean reasoning;
        private boolean enableThinking = true;
        private boolean fromTokenizer;
        private boolean replaceJinjaTemplate;

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

        /** Tools described by a string formatter around the record's raw tools text (phi4_mini) instead of a tool format. */
        Builder toolsSlot(Object... slots) {
            toolsSlot = SlotFormatter.of(slots);
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

        /** {@code efficient_eos}: answers end without eos (the default assistant slot has none), one eos closes the example. */
        Builder efficientEos() {
            efficientEos = true;
            return this;
        }

        /**
         * LLaMA-Factory's {@code replace_jinja_template}: an export writes this template as the tokenizer's chat
         * template even where the tokenizer has one.
         */
        Builder replaceJinjaTemplate() {
            replaceJinjaTemplate = true;
            return this;
        }

        /** LLaMA-Factory's ReasoningTemplate: thought blocks handled as {@link #encodeMultiturn} says. */
        Builder reasoning() {
            reasoning = true;
            return this;
        }

        /** As {@code parse_template} builds it from a tokenizer: the tokenizer's eos kept, no stop words. */
        private Builder recognisedFromTokenizer() {
            replaceEos = false;
            stopWords = List.of();
            fromTokenizer = true;
            return this;
        }

        ChatTemplate build() {
            return new ChatTemplate(this);
        }
    }
}
