package io.qlora4j.data;

import java.util.List;
import java.util.Set;
import java.util.function.Consumer;

/**
 * A prompt put to a model as LLaMA-Factory's chat and inference put it: the user turn of a one-turn conversation in
 * the job's chat template, with an empty answer to follow ({@code Template.encode_oneturn} over the prompt and an
 * empty assistant message, its prompt part), and generation stopped at the template's eos or any of its stop words
 * ({@code get_stop_token_ids}). The template is chosen as training chooses it ({@link ChatTemplate#resolve}: the
 * job's {@code template}, else the tokenizer's chat template, else {@code empty}, whose prompt is the text itself).
 */
public final class ChatPrompt {
    private final ChatTemplate template;
    private final TemplateTokenizer tokenizer;

    private ChatPrompt(ChatTemplate template, TemplateTokenizer tokenizer) {
        this.template = template;
        this.tokenizer = tokenizer;
    }

    /**
     * The prompt encoding of template {@code name} (null: as a job without {@code template} resolves it, said to
     * {@code log}) with the data keys that adjust a template ({@code default_system}, {@code tool_format},
     * {@code enable_thinking}), over {@code tokenizer}, which stays the caller's.
     *
     * @throws DataException naming the template or token at fault
     */
    public static ChatPrompt of(String name, String defaultSystem, String toolFormat, boolean enableThinking,
            TemplateTokenizer tokenizer, Consumer<String> log) throws DataException {
        ChatTemplate template = ChatTemplate.resolve(name, tokenizer.file(), log)
                .configured(defaultSystem, toolFormat, enableThinking);
        return new ChatPrompt(template, template.bind(tokenizer));
    }

    /** The template used. */
    public String templateName() {
        return template.name();
    }

    /** The ids the model continues: {@code prompt} as the user turn, under {@code system} (null: the default). */
    public int[] encode(String prompt, String system) {
        Conversation turn = new Conversation(List.of(new Message(Role.USER, prompt), new Message(Role.ASSISTANT, "")),
                system, null);
        return template.encodeMultiturn(tokenizer, turn, false).get(0)[0];
    }

    /** The ids that end an answer: the template's eos and its stop words that are tokens of the tokenizer. */
    public Set<Integer> stopIds() {
        return template.stopIds(tokenizer);
    }
}
