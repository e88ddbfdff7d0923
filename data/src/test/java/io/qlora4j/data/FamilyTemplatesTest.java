package io.qlora4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * The templates of the model families (Qwen 2/2.5/3, Gemma, Gemma 2, Phi-3, Phi-4, Phi-4-mini, Mistral variants)
 * against LLaMA-Factory's definitions in {@code template.py} at ff6d4d1: token ids and label masks of a
 * multi-turn record with a system prompt, a tool-call record (tools, function call, observation) and a Chinese
 * record. The tokenizer is character-level, so each expected sequence is written as the text the template's slots
 * produce, special tokens whole; trained tokens are between guillemets.
 */
class FamilyTemplatesTest {

    @TempDir
    Path dir;

    static final String TOOLS = "[{\"name\": \"get\", \"description\": \"weather\", \"parameters\": {\"type\": \"object\","
            + " \"properties\": {\"city\": {\"type\": \"string\"}}, \"required\": [\"city\"]}}]";
    /** json.dumps of the tool wrapped as {"type": "function", "function": tool}, as the qwen and mistral formats write it. */
    static final String WRAPPED = "{\"type\": \"function\", \"function\": {\"name\": \"get\", \"description\": \"weather\","
            + " \"parameters\": {\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\"}},"
            + " \"required\": [\"city\"]}}}";
    /** DEFAULT_TOOL_PROMPT of tool_utils.py for TOOLS. */
    static final String DEFAULT_TOOLS = "You have access to the following tools:\n> Tool Name: get\nTool Description:"
            + " weather\nTool Args:\n  - city (string, required): \n\nUse the following format if using a tool:\n```\n"
            + "Action: tool name (one of [get])\nAction Input: the input to the tool, in a JSON format representing the"
            + " kwargs (e.g. ```{\"input\": \"hello world\", \"num_beams\": 5}```)\n```\n";
    /** QWEN_TOOL_PROMPT of tool_utils.py for TOOLS. */
    static final String QWEN_TOOLS = "\n\n# Tools\n\nYou may call one or more functions to assist with the user query."
            + "\n\nYou are provided with function signatures within <tools></tools> XML tags:\n<tools>\n" + WRAPPED
            + "\n</tools>\n\nFor each function call, return a json object with function name and arguments within"
            + " <tool_call></tool_call> XML tags:\n<tool_call>\n{\"name\": <function-name>, \"arguments\":"
            + " <args-json-object>}\n</tool_call>";
    static final String CALL = "{\"name\": \"get\", \"arguments\": {\"city\": \"Paris\"}}";
    static final String EMPTY_THOUGHT = "<think>\n\n</think>\n\n";

    static final Conversation MULTI_TURN = conversation("be nice", null, Role.USER, "hi", Role.ASSISTANT, "fine",
            Role.USER, "how are you", Role.ASSISTANT, "ok");
    static final Conversation TOOL_CALL = conversation(null, TOOLS, Role.USER, "weather in Paris?", Role.FUNCTION, CALL,
            Role.OBSERVATION, "{\"c\": 20}", Role.ASSISTANT, "20 C");
    static final Conversation CHINESE = conversation("你是助手", null, Role.USER, "你好", Role.ASSISTANT, "你好！有什么可以帮你？");

    static final List<String> QWEN = List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<think>", "</think>",
            "<tool_call>", "</tool_call>", "<tool_response>", "</tool_response>");
    static final Map<String, Object> QWEN_CONFIG = Map.of("eos_token", "<|im_end|>", "pad_token", "<|endoftext|>");
    static final List<String> GEMMA = List.of("<pad>", "<eos>", "<bos>", "<start_of_turn>", "<end_of_turn>");
    static final Map<String, Object> GEMMA_CONFIG = Map.of("bos_token", "<bos>", "eos_token", "<eos>",
            "pad_token", "<pad>", "add_bos_token", true);
    static final List<String> MISTRAL = List.of("<unk>", "<s>", "</s>", "[INST]", "[/INST]", "[AVAILABLE_TOOLS]",
            "[/AVAILABLE_TOOLS]", "[TOOL_RESULTS]", "[/TOOL_RESULTS]", "[TOOL_CALLS]", "[SYSTEM_PROMPT]",
            "[/SYSTEM_PROMPT]");
    static final Map<String, Object> MISTRAL_CONFIG = Map.of("bos_token", "<s>", "eos_token", "</s>");

    static Conversation conversation(String system, String tools, Object... turns) {
        List<Message> messages = new java.util.ArrayList<>();
        for (int i = 0; i < turns.length; i += 2) {
            messages.add(new Message((Role) turns[i], (String) turns[i + 1]));
        }
        return new Conversation(messages, system, tools);
    }

    /** The record encoded for supervised training with the template, rendered with its trained spans. */
    private String sft(List<String> specials, Map<String, Object> config, ChatTemplate template, Conversation record,
            boolean maskHistory, boolean discardHistoryThoughts) throws Exception {
        CharTokenizer chars = CharTokenizer.write(dir, specials, config);
        try (TemplateTokenizer tokenizer = TemplateTokenizer.open(dir)) {
            TemplateTokenizer bound = template.bind(tokenizer);
            return chars.render(new SupervisedEncoder(template, bound, 100_000, false, maskHistory,
                    discardHistoryThoughts).encode(record));
        }
    }

    private String sft(List<String> specials, Map<String, Object> config, String template, Conversation record)
            throws Exception {
        return sft(specials, config, ChatTemplate.named(template), record, false, false);
    }

    @Test
    void qwen3NothinkIsChatmlWithQwenToolsAndNoDefaultSystem() throws Exception {
        assertEquals("<|im_start|>system\nbe nice<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
                + "\u00abfine<|im_end|>\n\u00bb<|im_start|>user\nhow are you<|im_end|>\n<|im_start|>assistant\n"
                + "\u00abok<|im_end|>\n\u00bb", sft(QWEN, QWEN_CONFIG, "qwen3_nothink", MULTI_TURN));
        assertEquals("<|im_start|>system\n" + QWEN_TOOLS + "<|im_end|>\n<|im_start|>user\nweather in Paris?<|im_end|>\n"
                + "<|im_start|>assistant\n\u00ab<tool_call>\n" + CALL + "\n</tool_call><|im_end|>\n\u00bb"
                + "<|im_start|>user\n<tool_response>\n{\"c\": 20}\n</tool_response><|im_end|>\n<|im_start|>assistant\n"
                + "\u00ab20 C<|im_end|>\n\u00bb", sft(QWEN, QWEN_CONFIG, "qwen3_nothink", TOOL_CALL));
        assertEquals("<|im_start|>system\n你是助手<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n"
                + "\u00ab你好！有什么可以帮你？<|im_end|>\n\u00bb", sft(QWEN, QWEN_CONFIG, "qwen3_nothink", CHINESE));
    }

    @Test
    void qwenAddsTheQwen25DefaultSystemOnlyWhenTheRecordHasNone() throws Exception {
        assertEquals("<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant."
                + QWEN_TOOLS + "<|im_end|>\n<|im_start|>user\nweather in Paris?<|im_end|>\n<|im_start|>assistant\n"
                + "\u00ab<tool_call>\n" + CALL + "\n</tool_call><|im_end|>\n\u00bb<|im_start|>user\n<tool_response>\n"
                + "{\"c\": 20}\n</tool_response><|im_end|>\n<|im_start|>assistant\n\u00ab20 C<|im_end|>\n\u00bb",
                sft(QWEN, QWEN_CONFIG, "qwen", TOOL_CALL));
        assertEquals("<|im_start|>system\n你是助手<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n"
                + "\u00ab你好！有什么可以帮你？<|im_end|>\n\u00bb", sft(QWEN, QWEN_CONFIG, "qwen", CHINESE));
    }

    @Test
    void qwen3TrainsAnEmptyThoughtBlockBeforeEveryAnswerAndFunctionCall() throws Exception {
        assertEquals("<|im_start|>system\nbe nice<|im_end|>\n<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n"
                + "\u00ab" + EMPTY_THOUGHT + "fine<|im_end|>\n\u00bb<|im_start|>user\nhow are you<|im_end|>\n"
                + "<|im_start|>assistant\n\u00ab" + EMPTY_THOUGHT + "ok<|im_end|>\n\u00bb",
                sft(QWEN, QWEN_CONFIG, "qwen3", MULTI_TURN));
        assertEquals("<|im_start|>system\n" + QWEN_TOOLS + "<|im_end|>\n<|im_start|>user\nweather in Paris?<|im_end|>\n"
                + "<|im_start|>assistant\n\u00ab" + EMPTY_THOUGHT + "<tool_call>\n" + CALL + "\n</tool_call><|im_end|>\n"
                + "\u00bb<|im_start|>user\n<tool_response>\n{\"c\": 20}\n</tool_response><|im_end|>\n"
                + "<|im_start|>assistant\n\u00ab" + EMPTY_THOUGHT + "20 C<|im_end|>\n\u00bb",
                sft(QWEN, QWEN_CONFIG, "qwen3", TOOL_CALL));
        assertEquals("<|im_start|>system\n你是助手<|im_end|>\n<|im_start|>user\n你好<|im_end|>\n<|im_start|>assistant\n"
                + "\u00ab" + EMPTY_THOUGHT + "你好！有什么可以帮你？<|im_end|>\n\u00bb", sft(QWEN, QWEN_CONFIG, "qwen3", CHINESE));
    }

    @Test
    void qwen3KeepsAWrittenThoughtAndWithThinkingOffPutsTheEmptyBlockInThePrompt() throws Exception {
        Conversation thought = conversation(null, null, Role.USER, "hi", Role.ASSISTANT,
                "<think>\nmull\n</think>\n\nfine", Role.USER, "bye", Role.ASSISTANT, "ok");
        ChatTemplate qwen3 = ChatTemplate.named("qwen3");
        assertEquals("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n\u00ab<think>\nmull\n</think>\n\nfine"
                + "<|im_end|>\n\u00bb<|im_start|>user\nbye<|im_end|>\n<|im_start|>assistant\n\u00ab" + EMPTY_THOUGHT
                + "ok<|im_end|>\n\u00bb", sft(QWEN, QWEN_CONFIG, qwen3, thought, false, false));
        // enable_thinking: false removes every thought and gives each prompt the empty block, untrained
        assertEquals("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n" + EMPTY_THOUGHT + "\u00abfine<|im_end|>\n"
                + "\u00bb<|im_start|>user\nbye<|im_end|>\n<|im_start|>assistant\n" + EMPTY_THOUGHT + "\u00abok<|im_end|>\n"
                + "\u00bb", sft(QWEN, QWEN_CONFIG, qwen3.configured(null, null, false), thought, false, false));
        // mask_history without preserve_thinking: earlier thoughts removed, only the last answer gets the block
        Conversation lastThinks = conversation(null, null, Role.USER, "hi", Role.ASSISTANT,
                "<think>\nmull\n</think>\n\nfine", Role.USER, "bye", Role.ASSISTANT, "ok");
        assertEquals("<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nfine<|im_end|>\n<|im_start|>user\nbye"
                + "<|im_end|>\n<|im_start|>assistant\n\u00ab" + EMPTY_THOUGHT + "ok<|im_end|>\n\u00bb",
                sft(QWEN, QWEN_CONFIG, qwen3, lastThinks, true, true));
    }

    @Test
    void gemmaFusesTheSystemIntoTheFirstUserTurnAfterBosAndEndsTurnsWithEndOfTurn() throws Exception {
        assertEquals("<bos><start_of_turn>user\nbe nice\n\nhi<end_of_turn>\n<start_of_turn>model\n\u00abfine<end_of_turn>"
                + "\n\u00bb<start_of_turn>user\nhow are you<end_of_turn>\n<start_of_turn>model\n\u00abok<end_of_turn>\n"
                + "\u00bb", sft(GEMMA, GEMMA_CONFIG, "gemma", MULTI_TURN));
        assertEquals("<bos><start_of_turn>user\n" + DEFAULT_TOOLS + "\n\nweather in Paris?<end_of_turn>\n"
                + "<start_of_turn>model\n\u00abAction: get\nAction Input: {\"city\": \"Paris\"}<end_of_turn>\n\u00bb"
                + "<start_of_turn>tool\n{\"c\": 20}<end_of_turn>\n<start_of_turn>model\n\u00ab20 C<end_of_turn>\n\u00bb",
                sft(GEMMA, GEMMA_CONFIG, "gemma", TOOL_CALL));
        assertEquals("<bos><start_of_turn>user\n你是助手\n\n你好<end_of_turn>\n<start_of_turn>model\n"
                + "\u00ab你好！有什么可以帮你？<end_of_turn>\n\u00bb", sft(GEMMA, GEMMA_CONFIG, "gemma", CHINESE));
    }

    @Test
    void gemma2EndsTheExampleWithOneTrainedEosAndLabelsLaterPromptsWithIt() throws Exception {
        // efficient_eos: the eos after the last answer is appended and trained; each later prompt's first label is
        // eos (the answer before it ended without one), the rest of the prompt is masked
        assertEquals("<bos><start_of_turn>user\nbe nice\n\nhi<end_of_turn>\n<start_of_turn>model\n\u00abfine<end_of_turn>"
                + "\n{<start_of_turn>-><eos>}\u00bbuser\nhow are you<end_of_turn>\n<start_of_turn>model\n\u00abok"
                + "<end_of_turn>\n<eos>\u00bb", sft(GEMMA, GEMMA_CONFIG, "gemma2", MULTI_TURN));
        assertEquals("<bos><start_of_turn>user\n" + DEFAULT_TOOLS + "\n\nweather in Paris?<end_of_turn>\n"
                + "<start_of_turn>model\n\u00abAction: get\nAction Input: {\"city\": \"Paris\"}<end_of_turn>\n"
                + "{<start_of_turn>-><eos>}\u00bbtool\n{\"c\": 20}<end_of_turn>\n<start_of_turn>model\n\u00ab20 C"
                + "<end_of_turn>\n<eos>\u00bb", sft(GEMMA, GEMMA_CONFIG, "gemma2", TOOL_CALL));
        assertEquals("<bos><start_of_turn>user\n你是助手\n\n你好<end_of_turn>\n<start_of_turn>model\n"
                + "\u00ab你好！有什么可以帮你？<end_of_turn>\n<eos>\u00bb", sft(GEMMA, GEMMA_CONFIG, "gemma2", CHINESE));
    }

    @Test
    void phiTemplatesOfPhi3Phi4AndPhi4Mini() throws Exception {
        List<String> phi3 = List.of("<unk>", "<s>", "</s>", "<|endoftext|>", "<|assistant|>", "<|end|>", "<|system|>",
                "<|user|>");
        Map<String, Object> phi3Config = Map.of("bos_token", "<s>", "eos_token", "<|endoftext|>");
        assertEquals("<|system|>\nbe nice<|end|>\n<|user|>\nhi<|end|>\n<|assistant|>\n\u00abfine<|end|>\n\u00bb"
                + "<|user|>\nhow are you<|end|>\n<|assistant|>\n\u00abok<|end|>\n\u00bb",
                sft(phi3, phi3Config, "phi", MULTI_TURN));
        assertEquals("<|system|>\n" + DEFAULT_TOOLS + "<|end|>\n<|user|>\nweather in Paris?<|end|>\n<|assistant|>\n"
                + "\u00abAction: get\nAction Input: {\"city\": \"Paris\"}<|end|>\n\u00bb<|user|>\n{\"c\": 20}<|end|>\n"
                + "<|assistant|>\n\u00ab20 C<|end|>\n\u00bb", sft(phi3, phi3Config, "phi", TOOL_CALL));
        assertEquals("<|system|>\n你是助手<|end|>\n<|user|>\n你好<|end|>\n<|assistant|>\n\u00ab你好！有什么可以帮你？<|end|>\n"
                + "\u00bb", sft(phi3, phi3Config, "phi", CHINESE));

        List<String> phi4 = List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|im_sep|>");
        Map<String, Object> phi4Config = Map.of("bos_token", "<|endoftext|>", "eos_token", "<|im_end|>");
        assertEquals("<|im_start|>system<|im_sep|>be nice<|im_end|><|im_start|>user<|im_sep|>hi<|im_end|>"
                + "<|im_start|>assistant<|im_sep|>\u00abfine<|im_end|>\u00bb<|im_start|>user<|im_sep|>how are you"
                + "<|im_end|><|im_start|>assistant<|im_sep|>\u00abok<|im_end|>\u00bb",
                sft(phi4, phi4Config, "phi4", MULTI_TURN));
        assertEquals("<|im_start|>system<|im_sep|>你是助手<|im_end|><|im_start|>user<|im_sep|>你好<|im_end|>"
                + "<|im_start|>assistant<|im_sep|>\u00ab你好！有什么可以帮你？<|im_end|>\u00bb",
                sft(phi4, phi4Config, "phi4", CHINESE));

        List<String> mini = List.of("<|endoftext|>", "<|assistant|>", "<|end|>", "<|system|>", "<|user|>", "<|tool|>",
                "<|/tool|>");
        Map<String, Object> miniConfig = Map.of("bos_token", "<|endoftext|>", "eos_token", "<|endoftext|>");
        // phi4_mini writes the record's tools text as it is between <|tool|> and <|/tool|>
        assertEquals("<|system|><|tool|>" + TOOLS + "<|/tool|><|end|><|user|>weather in Paris?<|end|><|assistant|>"
                + "\u00abAction: get\nAction Input: {\"city\": \"Paris\"}<|end|>\u00bb<|user|>{\"c\": 20}<|end|>"
                + "<|assistant|>\u00ab20 C<|end|>\u00bb", sft(mini, miniConfig, "phi4_mini", TOOL_CALL));
        assertEquals("<|system|>be nice<|end|><|user|>hi<|end|><|assistant|>\u00abfine<|end|>\u00bb<|user|>how are you"
                + "<|end|><|assistant|>\u00abok<|end|>\u00bb", sft(mini, miniConfig, "phi4_mini", MULTI_TURN));
    }

    @Test
    void ministralFusesTheSystemAndMistralSmallHasASystemPromptBlock() throws Exception {
        assertEquals("<s>[INST]be nice\n\nhi[/INST]\u00abfine</s>\u00bb[INST]how are you[/INST]\u00abok</s>\u00bb",
                sft(MISTRAL, MISTRAL_CONFIG, "ministral", MULTI_TURN));
        assertEquals("<s>[INST][AVAILABLE_TOOLS] [" + WRAPPED + "][/AVAILABLE_TOOLS]\n\nweather in Paris?[/INST]"
                + "\u00ab[TOOL_CALLS][" + CALL + "]</s>\u00bb[TOOL_RESULTS]{\"content\": {\"c\": 20}}[/TOOL_RESULTS]"
                + "\u00ab20 C</s>\u00bb", sft(MISTRAL, MISTRAL_CONFIG, "ministral", TOOL_CALL));
        assertEquals("<s>[INST]你是助手\n\n你好[/INST]\u00ab你好！有什么可以帮你？</s>\u00bb",
                sft(MISTRAL, MISTRAL_CONFIG, "ministral", CHINESE));
        assertEquals("<s>[SYSTEM_PROMPT]be nice[/SYSTEM_PROMPT][INST]hi[/INST]\u00abfine</s>\u00bb[INST]how are you"
                + "[/INST]\u00abok</s>\u00bb", sft(MISTRAL, MISTRAL_CONFIG, "mistral_small", MULTI_TURN));
        assertEquals("<s>[SYSTEM_PROMPT][AVAILABLE_TOOLS] [" + WRAPPED + "][/AVAILABLE_TOOLS][/SYSTEM_PROMPT]"
                + "[INST]weather in Paris?[/INST]\u00ab[TOOL_CALLS][" + CALL + "]</s>\u00bb[TOOL_RESULTS]{\"content\":"
                + " {\"c\": 20}}[/TOOL_RESULTS]\u00ab20 C</s>\u00bb", sft(MISTRAL, MISTRAL_CONFIG, "mistral_small", TOOL_CALL));
        assertEquals("<s>[INST] be nice\n\nhi[/INST]\u00ab fine</s>\u00bb[INST] how are you[/INST]\u00ab ok</s>\u00bb",
                sft(MISTRAL, MISTRAL_CONFIG, "mistral", MULTI_TURN));
    }

    /**
     * LLaMA-Factory's {@code Template._encode} fills a user slot with {@code content} and then {@code idx} (the turn's
     * index), each at its first placeholder, so a {@code {{idx}}} the user wrote becomes the index; the Llama-2 kind
     * ({@code Llama2Template}: mistral, llama2, gemma) passes no index and leaves it.
     */
    @Test
    void aUserTurnsIdxPlaceholderBecomesItsIndexExceptInTheLlama2Kind() throws Exception {
        Conversation placeholders = conversation(null, null, Role.USER, "a {{idx}} {{content}}", Role.ASSISTANT,
                "fine", Role.USER, "b {{idx}} {{idx}}", Role.ASSISTANT, "ok");
        assertEquals("<|im_start|>user\na 0 {{content}}<|im_end|>\n<|im_start|>assistant\n\u00abfine<|im_end|>\n"
                + "\u00bb<|im_start|>user\nb 1 {{idx}}<|im_end|>\n<|im_start|>assistant\n\u00abok<|im_end|>\n\u00bb",
                sft(QWEN, QWEN_CONFIG, "qwen3_nothink", placeholders));
        assertEquals("<s>[INST] a {{idx}} {{content}}[/INST]\u00ab fine</s>\u00bb[INST] b {{idx}} {{idx}}[/INST]"
                + "\u00ab ok</s>\u00bb", sft(MISTRAL, MISTRAL_CONFIG, "mistral", placeholders));
    }

    @Test
    void templatesThatReplaceEosBindTheirStopWordAndGemma2KeepsTheTokenizers() throws Exception {
        CharTokenizer.write(dir, GEMMA, GEMMA_CONFIG);
        try (TemplateTokenizer tokenizer = TemplateTokenizer.open(dir)) {
            assertEquals("<end_of_turn>", ChatTemplate.named("gemma").bind(tokenizer).eosToken());
            assertEquals("<eos>", ChatTemplate.named("gemma2").bind(tokenizer).eosToken());
        }
    }

    @Test
    void toolFormatKeyReplacesFunctionSlotsAndUnimplementedFormatsAreNamed() throws Exception {
        ChatTemplate defaultTools = ChatTemplate.named("qwen3_nothink").configured(null, "default", true);
        assertEquals("<|im_start|>user\nweather in Paris?<|im_end|>\n<|im_start|>assistant\n\u00abAction: get\n"
                + "Action Input: {\"city\": \"Paris\"}<|im_end|>\u00bb",
                sft(QWEN, QWEN_CONFIG, defaultTools, conversation(null, null, Role.USER, "weather in Paris?",
                        Role.FUNCTION, CALL), false, false));
        DataException e = assertThrows(DataException.class,
                () -> ChatTemplate.named("qwen").configured(null, "glm4", true));
        assertEquals("tool_format: 'glm4' is not implemented yet (available: default, llama3, mistral, qwen)",
                e.getMessage());
        assertTrue(ChatTemplate.names().containsAll(List.of("qwen3", "qwen3_nothink", "gemma", "gemma2", "phi", "phi4",
                "phi4_mini", "ministral", "mistral_small")));
    }
}
