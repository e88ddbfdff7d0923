package io.qlora4j.data;

import java.util.Collections;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

/**
 * The registered templates, each exactly as LLaMA-Factory's {@code template.py} defines the
 * template of the same name (checked against hiyouga/LLaMA-Factory at commit ff6d4d1): the text
 * families' templates (Llama 2/3, Mistral, Qwen 2/2.5/3, Gemma, Gemma 2, Phi-3/3.5, Phi-4, Phi-4-mini)
 * and the generic ones (default, empty, alpaca, chatml).
 */
final class ChatTemplates {

    private static final String QWEN_USER = "<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n";
    private static final String QWEN_OBSERVATION = "<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response>"
            + "<|im_end|>\n<|im_start|>assistant\n";
    private static final String GEMMA_USER = "<start_of_turn>user\n{{content}}<end_of_turn>\n<start_of_turn>model\n";
    private static final String GEMMA_OBSERVATION = "<start_of_turn>tool\n{{content}}<end_of_turn>\n"
            + "<start_of_turn>model\n";
    private static final String MISTRAL_OBSERVATION = "[TOOL_RESULTS]{\"content\": {{content}}}[/TOOL_RESULTS]";

    static final Map<String, ChatTemplate> ALL = registry();

    /** LLaMA-Factory's other templates (at ff6d4d1), refused by name as not implemented. */
    static final Set<String> NOT_IMPLEMENTED = Set.of(
            "aeva", "bailing", "bailing_v2", "breeze", "chatglm3", "chatml_de", "cohere", "cpm4", "dbrx", "deepseek",
            "deepseek3", "deepseekcoder", "deepseekr1", "dots_ocr", "ernie", "ernie_nothink", "ernie_vl", "exaone",
            "falcon", "falcon_h1", "fewshot", "gemma3", "gemma3n", "gemma4", "gemma4n", "glm4", "glm4_5v", "glm4_7",
            "glm4_moe", "glm4v", "glm_ocr", "glmz1", "gpt_oss", "granite3", "granite3_vision", "granite4", "hunyuan",
            "hunyuan_small", "hy3", "hy_dense_1_8b", "hy_dense_7b", "index", "intern2", "intern_s1", "intern_vl",
            "keye_vl", "kimi_vl", "lfm2", "lfm2_vl", "llama2_zh", "llama4", "llava", "llava_next",
            "llava_next_llama3", "llava_next_mistral", "llava_next_qwen", "llava_next_video",
            "llava_next_video_mistral", "llava_next_video_yi", "llava_next_yi", "mimo", "mimo_v2", "mimo_vl",
            "minicpm_o", "minicpm_v", "minicpm_v_4_6", "minimax1", "minimax2", "ministral3", "mllama", "moonlight",
            "moss_vl", "olmo", "openchat", "openchat-3.6", "opencoder", "paligemma", "paligemma_chat", "phi_small",
            "pixtral", "qwen2_audio", "qwen2_omni", "qwen2_vl", "qwen3_5", "qwen3_5_nothink", "qwen3_6",
            "qwen3_omni", "qwen3_omni_nothink", "qwen3_vl", "qwen3_vl_nothink", "sailor", "seed_coder", "seed_oss",
            "smollm", "smollm2", "solar", "starchat", "telechat2", "vicuna", "video_llava", "xuanyuan", "yi",
            "yi_vl", "youtu", "youtu_vl", "yuan", "zephyr");

    private ChatTemplates() {
    }

    private static Map<String, ChatTemplate> registry() {
        Map<String, ChatTemplate> all = new TreeMap<>();
        register(all, new ChatTemplate.Builder("default")
                .user("Human: {{content}}", Slot.EOS, "\nAssistant:")
                .assistant("{{content}}", Slot.EOS, "\n")
                .system("System: {{content}}", Slot.EOS, "\n")
                .replaceJinjaTemplate());
        register(all, new ChatTemplate.Builder("empty")
                .assistant("{{content}}"));
        register(all, new ChatTemplate.Builder("alpaca")
                .user("### Instruction:\n{{content}}\n\n### Response:\n")
                .assistant("{{content}}", Slot.EOS, "\n\n")
                .defaultSystem("Below is an instruction that describes a task. "
                        + "Write a response that appropriately completes the request.\n\n")
                .replaceJinjaTemplate());
        register(all, new ChatTemplate.Builder("llama2")
                .user(Slot.BOS, "[INST] {{content}} [/INST]")
                .system("<<SYS>>\n{{content}}\n<</SYS>>\n\n")
                .systemInFirstUser());
        register(all, new ChatTemplate.Builder("llama3")
                .user("<|start_header_id|>user<|end_header_id|>\n\n{{content}}<|eot_id|>"
                        + "<|start_header_id|>assistant<|end_header_id|>\n\n")
                .assistant("{{content}}<|eot_id|>")
                .system("<|start_header_id|>system<|end_header_id|>\n\n{{content}}<|eot_id|>")
                .function("{{content}}<|eot_id|>")
                .toolFormat(ToolFormat.LLAMA3)
                .observation("<|start_header_id|>ipython<|end_header_id|>\n\n{{content}}<|eot_id|>"
                        + "<|start_header_id|>assistant<|end_header_id|>\n\n")
                .prefix(Slot.BOS)
                .stopWords("<|eot_id|>", "<|eom_id|>")
                .replaceEos());
        registerMistrals(all);
        registerQwens(all);
        register(all, new ChatTemplate.Builder("chatml")
                .user(QWEN_USER)
                .assistant("{{content}}<|im_end|>\n")
                .system("<|im_start|>system\n{{content}}<|im_end|>\n")
                .observation("<|im_start|>tool\n{{content}}<|im_end|>\n<|im_start|>assistant\n")
                .stopWords("<|im_end|>", "<|im_start|>")
                .replaceEos()
                .replaceJinjaTemplate());
        register(all, new ChatTemplate.Builder("gemma")
                .user(GEMMA_USER)
                .assistant("{{content}}<end_of_turn>\n")
                .system("{{content}}\n\n")
                .observation(GEMMA_OBSERVATION)
                .prefix(Slot.BOS)
                .stopWords("<end_of_turn>")
                .replaceEos()
                .systemInFirstUser());
        register(all, new ChatTemplate.Builder("gemma2")
                .user(GEMMA_USER)
                .assistant("{{content}}<end_of_turn>\n")
                .system("{{content}}\n\n")
                .observation(GEMMA_OBSERVATION)
                .prefix(Slot.BOS)
                .stopWords("<eos>", "<end_of_turn>")
                .efficientEos()
                .systemInFirstUser());
        registerPhis(all);
        return Collections.unmodifiableMap(all);
    }

    /** mistral (Mistral 7B, Mixtral, Mistral Nemo), ministral (Ministral 8B) and mistral_small (Mistral Small 24B). */
    private static void registerMistrals(Map<String, ChatTemplate> all) {
        register(all, new ChatTemplate.Builder("mistral")
                .user("[INST] {{content}}[/INST]")
                .assistant(" {{content}}", Slot.EOS)
                .system("{{content}}\n\n")
                .function("[TOOL_CALLS] {{content}}", Slot.EOS)
                .toolFormat(ToolFormat.MISTRAL)
                .observation("[TOOL_RESULTS] {\"content\": {{content}}}[/TOOL_RESULTS]")
                .prefix(Slot.BOS)
                .systemInFirstUser());
        register(all, new ChatTemplate.Builder("ministral")
                .user("[INST]{{content}}[/INST]")
                .system("{{content}}\n\n")
                .function("[TOOL_CALLS]{{content}}", Slot.EOS)
                .toolFormat(ToolFormat.MISTRAL)
                .observation(MISTRAL_OBSERVATION)
                .prefix(Slot.BOS)
                .systemInFirstUser());
        register(all, new ChatTemplate.Builder("mistral_small")
                .user("[INST]{{content}}[/INST]")
                .system("[SYSTEM_PROMPT]{{content}}[/SYSTEM_PROMPT]")
                .function("[TOOL_CALLS]{{content}}", Slot.EOS)
                .toolFormat(ToolFormat.MISTRAL)
                .observation(MISTRAL_OBSERVATION)
                .prefix(Slot.BOS));
    }

    /** qwen (Qwen 2 and 2.5), qwen3 (Qwen 3 with thinking) and qwen3_nothink (Qwen 3 Instruct-2507 and base). */
    private static void registerQwens(Map<String, ChatTemplate> all) {
        for (String name : new String[] {"qwen", "qwen3", "qwen3_nothink"}) {
            ChatTemplate.Builder qwen = new ChatTemplate.Builder(name)
                    .user(QWEN_USER)
                    .assistant("{{content}}<|im_end|>\n")
                    .system("<|im_start|>system\n{{content}}<|im_end|>\n")
                    .function("{{content}}<|im_end|>\n")
                    .toolFormat(ToolFormat.QWEN)
                    .observation(QWEN_OBSERVATION)
                    .stopWords("<|im_end|>")
                    .replaceEos();
            if (name.equals("qwen")) {
                qwen.defaultSystem("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.");
            } else if (name.equals("qwen3")) {
                qwen.reasoning();
            }
            register(all, qwen);
        }
    }

    /** phi (Phi-3, Phi-3.5), phi4 (Phi-4) and phi4_mini (Phi-4-mini). */
    private static void registerPhis(Map<String, ChatTemplate> all) {
        register(all, new ChatTemplate.Builder("phi")
                .user("<|user|>\n{{content}}<|end|>\n<|assistant|>\n")
                .assistant("{{content}}<|end|>\n")
                .system("<|system|>\n{{content}}<|end|>\n")
                .stopWords("<|end|>")
                .replaceEos());
        register(all, new ChatTemplate.Builder("phi4")
                .user("<|im_start|>user<|im_sep|>{{content}}<|im_end|><|im_start|>assistant<|im_sep|>")
                .assistant("{{content}}<|im_end|>")
                .system("<|im_start|>system<|im_sep|>{{content}}<|im_end|>")
                .stopWords("<|im_end|>")
                .replaceEos());
        register(all, new ChatTemplate.Builder("phi4_mini")
                .user("<|user|>{{content}}<|end|><|assistant|>")
                .assistant("{{content}}<|end|>")
                .system("<|system|>{{content}}<|end|>")
                .toolsSlot("<|tool|>{{content}}<|/tool|>")
                .stopWords("<|end|>")
                .replaceEos());
    }

    private static void register(Map<String, ChatTemplate> all, ChatTemplate.Builder builder) {
        ChatTemplate template = builder.build();
        all.put(template.name(), template);
    }
}
