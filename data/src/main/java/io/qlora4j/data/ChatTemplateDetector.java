package io.qlora4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;

/**
 * Names the known template whose shape a tokenizer's Jinja chat template has, recognised by the
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

    /**
     * A tokenizer's chat template as transformers loads it, with the file it came from.
     *
     * @param text the template, or for named templates the one called {@code default}; null when there is none
     * @param named whether the tokenizer holds named templates (transformers then makes {@code chat_template} a
     *     dict, which LLaMA-Factory does not parse)
     * @param source chat_template.jinja or tokenizer_config.json
     */
    record Found(String text, boolean named, Path source) {}

    /** {@code template: auto}: the template of the tokenizer's chat template, which must exist and be known. */
    static String detect(Path tokenizerConfig) throws DataException {
        String prefix = "template: auto: " + tokenizerConfig;
        Found found = read(tokenizerConfig);
        if (found.text() == null) {
            throw new DataException(prefix + (Files.isRegularFile(tokenizerConfig) ? " has no chat_template"
                    : " not found") + "; set template: to one of " + ChatTemplate.names());
        }
        return shape(found.text(), tokenizerConfig, "template: auto: the chat_template in " + found.source());
    }

    /**
     * The template of a chat template's shape (gemma2 where config.json beside {@code tokenizerConfig} says so); one
     * of no known shape is refused, {@code what} naming it.
     */
    static String shape(String jinja, Path tokenizerConfig, String what) throws DataException {
        for (Map.Entry<String, List<String>> shape : SHAPES) {
            if (shape.getValue().stream().allMatch(jinja::contains)) {
                String name = shape.getKey();
                return name.equals("gemma") && "gemma2".equals(modelType(tokenizerConfig)) ? "gemma2" : name;
            }
        }
        throw new DataException(what + " matches none of the known shapes ("
                + String.join(", ", SHAPES.stream().map(Map.Entry::getKey).distinct().toList())
                + "); set template: explicitly (template: empty takes the text as it is)");
    }

    /**
     * The chat template of the tokenizer whose tokenizer_config.json is {@code tokenizerConfig}, by transformers'
     * rule: a {@code chat_template.jinja} beside it (and named ones in {@code additional_chat_templates/}) takes
     * priority over the config's {@code chat_template} (a string, or a list of named templates; a number or a boolean
     * is refused naming the file).
     */
    static Found read(Path tokenizerConfig) throws DataException {
        Path jinja = tokenizerConfig.resolveSibling("chat_template.jinja");
        boolean file = Files.isRegularFile(jinja);
        boolean extra = hasJinja(tokenizerConfig.resolveSibling("additional_chat_templates"));
        if (file || extra) {
            return new Found(file ? readText(jinja) : null, extra, file ? jinja : tokenizerConfig);
        }
        if (!Files.isRegularFile(tokenizerConfig)) {
            return new Found(null, false, tokenizerConfig);
        }
        JsonNode template;
        try {
            template = JSON.readTree(tokenizerConfig.toFile()).path("chat_template");
        } catch (IOException e) {
            throw new DataException(tokenizerConfig + ": is not valid JSON: "
                    + e.getMessage().lines().findFirst().orElse(""), e);
        }
        if (template.isArray()) {
            String text = null;
            for (JsonNode entry : template) {
                if ("default".equals(entry.path("name").asText()) && entry.path("template").isTextual()) {
                    text = entry.path("template").asText();
                }
            }
            return new Found(text, true, tokenizerConfig);
        }
        if (template.isNumber() || template.isBoolean()) {
            // read as no template, a mistyped one would silently train with the empty template
            throw new DataException(tokenizerConfig + ": chat_template must be a string or a list of named templates,"
                    + " found " + template);
        }
        return new Found(template.isTextual() ? template.asText() : null, false, tokenizerConfig);
    }

    private static boolean hasJinja(Path dir) throws DataException {
        if (!Files.isDirectory(dir)) {
            return false;
        }
        try (Stream<Path> files = Files.list(dir)) {
            return files.anyMatch(f -> f.getFileName().toString().endsWith(".jinja"));
        } catch (IOException e) {
            throw new DataException(dir + ": cannot be listed: " + e.getMessage(), e);
        }
    }

    private static String readText(Path file) throws DataException {
        try {
            return Files.readString(file);
        } catch (IOException e) {
            throw new DataException(file + ": cannot be read as UTF-8 text: " + e.getMessage(), e);
        }
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
