package io.qlora4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.function.Consumer;

/**
 * What LLaMA-Factory's export ({@code export_model}) writes for the job's template beside the merged weights: the
 * tokenizer as the template fixes it ({@code fix_special_tokens}: eos replaced by the first stop word where the
 * template says so, the eos as pad where there is none; padding side left), the template as the tokenizer's chat
 * template where it has none or the template replaces it ({@code fix_jinja_template}, saved as transformers 5 saves
 * one: {@code chat_template.jinja}), and an Ollama {@code Modelfile} ({@code get_ollama_modelfile}). A template's
 * other stop words stay out of the tokenizer (qlora4j adds no tokens; the Modelfile names them).
 *
 * @param eosToken the eos after the template's fixes, null when the tokenizer has none
 * @param jinja the chat template to write, null where the tokenizer's stays
 * @param modelfile the Ollama Modelfile
 */
public record TemplateExport(String eosToken, String jinja, String modelfile) {
    private static final ObjectMapper JSON = new ObjectMapper();

    /**
     * The export of template {@code name} (null: as a job without {@code template} resolves it, said to {@code log})
     * with the data keys that adjust a template, over {@code tokenizer}, which stays the caller's (and may be closed
     * once this returns).
     *
     * @throws DataException naming the template or token at fault
     */
    public static TemplateExport of(String name, String defaultSystem, String toolFormat, boolean enableThinking,
            TemplateTokenizer tokenizer, Consumer<String> log) throws DataException {
        ChatTemplate template = ChatTemplate.resolve(name, tokenizer.file(), log)
                .configured(defaultSystem, toolFormat, enableThinking);
        ChatTemplateDetector.Found found = ChatTemplateDetector.read(
                tokenizer.file().resolveSibling("tokenizer_config.json"));
        boolean none = found.text() == null && !found.named();
        TemplateTokenizer bound = template.bind(tokenizer);
        TemplateText text = new TemplateText(template, bound);
        return new TemplateExport(bound.eosToken(), none || template.replacesJinjaTemplate() ? text.jinja() : null,
                text.modelfile());
    }

    /**
     * Rewrites the tokenizer_config.json a model directory {@code dir} holds (copied from the base), writes its
     * chat_template.jinja where the template becomes the chat template, and its Modelfile.
     */
    public void writeTo(Path dir) throws IOException {
        Path config = dir.resolve("tokenizer_config.json");
        ObjectNode fields = JSON.createObjectNode();
        if (Files.isRegularFile(config)) {
            if (!(JSON.readTree(config.toFile()) instanceof ObjectNode read)) {
                throw new IOException("the base's tokenizer_config.json is not a JSON object");
            }
            fields = read;
        }
        if (eosToken != null) {
            fields.put("eos_token", eosToken);
            JsonNode pad = fields.path("pad_token");
            if (!pad.isTextual() && !pad.path("content").isTextual()) {
                fields.put("pad_token", eosToken);
            }
        }
        fields.put("padding_side", "left");
        if (jinja != null) {
            fields.remove("chat_template");
            Files.writeString(dir.resolve("chat_template.jinja"), jinja, StandardCharsets.UTF_8);
        }
        Files.writeString(config, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(fields) + "\n",
                StandardCharsets.UTF_8);
        Files.writeString(dir.resolve("Modelfile"), modelfile, StandardCharsets.UTF_8);
    }
}
