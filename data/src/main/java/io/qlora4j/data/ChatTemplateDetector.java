package io.qlora4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

/**
 * {@code template: auto}: names the known template whose shape a tokenizer's Jinja
 * {@code chat_template} has, recognised by the markers each format puts around a turn.
 */
final class ChatTemplateDetector {
    /** Marker sets, most specific first: every marker of an entry must occur in the chat template. */
    private static final List<Map.Entry<String, List<String>>> SHAPES = List.of(
            Map.entry("llama3", List.of("<|start_header_id|>", "<|eot_id|>")),
            Map.entry("qwen", List.of("<|im_start|>", "You are Qwen")),
            Map.entry("chatml", List.of("<|im_start|>", "<|im_end|>")),
            Map.entry("llama2", List.of("[INST]", "<<SYS>>")),
            Map.entry("mistral", List.of("[INST]", "[/INST]")),
            Map.entry("alpaca", List.of("### Instruction:", "### Response:")));

    private ChatTemplateDetector() {}

    static String detect(Path tokenizerConfig) throws DataException {
        String prefix = "template: auto: " + tokenizerConfig;
        if (!Files.isRegularFile(tokenizerConfig)) {
            throw new DataException(prefix + " not found; set template: to one of " + ChatTemplate.names());
        }
        JsonNode template;
        try {
            template = new ObjectMapper().readTree(tokenizerConfig.toFile()).path("chat_template");
        } catch (IOException e) {
            throw new DataException(prefix + " is not valid JSON: " + e.getMessage().lines().findFirst().orElse(""), e);
        }
        if (template.isArray()) {
            JsonNode named = template;
            template = com.fasterxml.jackson.databind.node.MissingNode.getInstance();
            for (JsonNode entry : named) {
                if ("default".equals(entry.path("name").asText())) {
                    template = entry.path("template");
                }
            }
        }
        if (!template.isTextual()) {
            throw new DataException(prefix + " has no chat_template; set template: to one of " + ChatTemplate.names());
        }
        String jinja = template.asText();
        for (Map.Entry<String, List<String>> shape : SHAPES) {
            if (shape.getValue().stream().allMatch(jinja::contains)) {
                return shape.getKey();
            }
        }
        throw new DataException(prefix + ": its chat_template matches none of the known shapes ("
                + String.join(", ", SHAPES.stream().map(Map.Entry::getKey).toList()) + "); set template: explicitly");
    }
}
