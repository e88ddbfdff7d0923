package io.qlora4j.data;

import java.util.Map;
import java.util.TreeMap;

/**
 * The registered templates, each exactly as LLaMA-Factory's {@code template.py} defines the
 * template of the same name (checked against hiyouga/LLaMA-Factory at commit ff6d4d1).
 */
final class ChatTemplates {

    static final Map<String, ChatTemplate> ALL = registry();

    private ChatTemplates() {
    }

    private static Map<String, ChatTemplate> registry() {
        Map<String, ChatTemplate> all = new TreeMap<>();
        register(all, new ChatTemplate.Builder("default")
                .user("Human: {{content}}", Slot.EOS, "\nAssistant:")
                .assistant("{{content}}", Slot.EOS, "\n")
                .system("System: {{content}}", Slot.EOS, "\n"));
        register(all, new ChatTemplate.Builder("empty")
                .assistant("{{content}}"));
        register(all, new ChatTemplate.Builder("alpaca")
                .user("### Instruction:\n{{content}}\n\n### Response:\n")
                .assistant("{{content}}", Slot.EOS, "\n\n")
                .defaultSystem("Below is an instruction that describes a task. "
                        + "Write a response that appropriately completes the request.\n\n"));
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
        register(all, new ChatTemplate.Builder("mistral")
                .user("[INST] {{content}}[/INST]")
                .assistant(" {{content}}", Slot.EOS)
                .system("{{content}}\n\n")
                .function("[TOOL_CALLS] {{content}}", Slot.EOS)
                .toolFormat(ToolFormat.MISTRAL)
                .observation("[TOOL_RESULTS] {\"content\": {{content}}}[/TOOL_RESULTS]")
                .prefix(Slot.BOS)
                .systemInFirstUser());
        register(all, new ChatTemplate.Builder("qwen")
                .user("<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n")
                .assistant("{{content}}<|im_end|>\n")
                .system("<|im_start|>system\n{{content}}<|im_end|>\n")
                .function("{{content}}<|im_end|>\n")
                .toolFormat(ToolFormat.QWEN)
                .observation("<|im_start|>user\n<tool_response>\n{{content}}\n</tool_response><|im_end|>\n"
                        + "<|im_start|>assistant\n")
                .defaultSystem("You are Qwen, created by Alibaba Cloud. You are a helpful assistant.")
                .stopWords("<|im_end|>")
                .replaceEos());
        register(all, new ChatTemplate.Builder("chatml")
                .user("<|im_start|>user\n{{content}}<|im_end|>\n<|im_start|>assistant\n")
                .assistant("{{content}}<|im_end|>\n")
                .system("<|im_start|>system\n{{content}}<|im_end|>\n")
                .observation("<|im_start|>tool\n{{content}}<|im_end|>\n<|im_start|>assistant\n")
                .stopWords("<|im_end|>", "<|im_start|>")
                .replaceEos());
        return java.util.Collections.unmodifiableMap(all);
    }

    private static void register(Map<String, ChatTemplate> all, ChatTemplate.Builder builder) {
        ChatTemplate template = builder.build();
        all.put(template.name(), template);
    }
}
