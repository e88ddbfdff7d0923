package io.qlora4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.MissingNode;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * Names the known template whose shape a tokenizer's Jinja {@code chat_template} has, recognised by the
 * markers each format puts around a turn (qlora4j runs no Jinja): for {@code template: auto} and for a job
 * without {@code template}. Where two templates share a chat template the model decides: Gemma and Gemma 2
 * ship the same one, so config.json's {@code model_type} beside the tokenizer picks {@code gemma2}. Mistral
 * chat templates give {@code mistral} (Ministral 8B's cannot be told from Mistral Nemo's, which
 * LLaMA-Factory pairs with {@code mistral}; name {@code ministral} explicitly).
 */
final class ChatTemplateDetector {
    /**
     * Marker sets, most specific first: every marker of an entry must occur in the chat template. The Qwen 3
     * entries: a hybrid template switches on {@code enable_thinking}, a thinking-only one opens the block in the
     * generation prompt; Qwen 3 Instruct-2507 still strips {@code <think>} blocks from history but never writes
     * one; Qwen 2/2.5 carry the "You are Qwen" default system prompt.
     */
    private static final List<Map.Entry<String, List<String>>> SHAPES = List.of(
            Map.entry("llama3", List.of("<|start_header_id|>", "<|eot_id|>")),
            Map.entry("qwen3", List.of("<|im_start|>", "enable_thinking")),
            Map.entry("qwen3", List.of("<|im_start|>assistant\\n<think>")),
            Map.entry("qwen", List.of("<|im_start|>", "You are Qwen")),
            Map.entry("phi4", List.of("<|im_start|>", "<|im_sep|>")),
            Map.entry("qwen3_nothink", List.of("<|im_start|>", "<think>")),
            Map.entry("qwen3_nothink", List.of("<|im_start|>", "<tool_call>")),
            Map.entry("chatml", List.of("<|im_start|>", "<|im_end|>")),
            Map.entry("gemma", List.of("<start_of_turn>", "<end_of_turn>")),
            Map.entry("phi4_mini", List.of("<|tool|>", "<|end|>")),
            Map.entry("phi", List.of("<|assistant|>", "<|end|>")),
            Map.entry("llama2", List.of("[INST]", "<<SYS>>")),
            Map.entry("mistral_small", List.of("[INST]", "[SYSTEM_PROMPT]")),
            Map.entry("mistral", List.of("[INST]", "[/INST]")),
            Map.entry("alpaca", List.of("### Instruction:", "### Response:")));

    private static final ObjectMapper JSON = new ObjectMapper();

    private ChatTemplateDetector() {}

    /** {@code template: auto}: the template of the tokenizer's chat template, which must exist and be known. */
    static String detect(Path tokenizerConfig) throws DataException {
        String prefix = "template: auto: " + tokenizerConfig;
        if (!Files.isRegularFile(tokenizerConfig)) {
            throw new DataException(prefix + " not found; set template: to one of " + ChatTemplate.names());
        }
        String jinja = chatTemplate(tokenizerConfig);
        if (jinja == null) {
            throw new DataException(prefix + " has no chat_template; set template: to one of " + ChatTemplate.names());
        }
        return shape(jinja, tokenizerConfig, prefix + ": its chat_template");
    }

    /**
     * For a job without {@code template}: the template of the tokenizer's chat template, null when there is none
     * (no tokenizer_config.json or no chat_template in it); a chat template of no known shape is refused.
     */
    static String detectIfPresent(Path tokenizerConfig) throws DataException {
        String jinja = Files.isRegularFile(tokenizerConfig) ? chatTemplate(tokenizerConfig) : null;
        return jinja == null ? null
                : shape(jinja, tokenizerConfig, "template: not set and the chat_template in " + tokenizerConfig);
    }

    private static String shape(String jinja, Path tokenizerConfig, String what) throws DataException {
        for (Map.Entry<String, List<String>> shape : SHAPES) {
            if (shape.getValue().stream().allMatch(jinja::contains)) {
                String name = shape.getKey();
                return name.equals("gemma") && "gemma2".equals(modelType(tokenizerConfig)) ? "gemma2" : name;
            }
        }
        throw new DataException(what + " matches none of the known shapes ("
                + String.join(", ", SHAPES.stream().map(Map.Entry::getKey).distinct().toList())
                + "); set template: explicitly");
    }

    /** The {@code chat_template} text (the {@code default} entry of a named list), null when there is none. */
    private static String chatTemplate(Path tokenizerConfig) throws DataException {
        JsonNode template;
        try {
            template = JSON.readTree(tokenizerConfig.toFile()).path("chat_template");
        } catch (IOException e) {
            throw new DataException(tokenizerConfig + ": is not valid JSON: "
                    + e.getMessage().lines().findFirst().orElse(""), e);
        }
        if (template.isArray()) {
            JsonNode named = template;
            template = MissingNode.getInstance();
            for (JsonNode entry : named) {
                if ("default".equals(entry.path("name").asText())) {
                    template = entry.path("template");
                }
            }
        }
        return template.isTextual() ? template.asText() : null;
    }

    /** config.json's {@code model_type} in the tokenizer's folder, null when absent or unreadable. */
    private static String modelType(Path tokenizerConfig) {
        Path config = tokenizerConfig.resolveSibling("config.json");
        try {
            return Files.isRegularFile(config) ? JSON.readTree(config.toFile()).path("model_type").asText(null) : null;
        } catch (IOException e) {
            return null;
        }
    }
}
