package io.qlora4j.model.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.SerializationFeature;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The files of a Hugging Face model directory besides its weights, as jobs that write a new directory from an
 * old one handle them: {@code config.json} read as an editable tree and written back, and the tokenizer and
 * generation files copied unchanged.
 */
public final class ModelFiles {
    /** Copied as they are: the tokenizer in its fast and slow forms, its settings, and the generation defaults. */
    private static final List<String> COMPANION_FILES = List.of("tokenizer.json", "tokenizer_config.json",
            "special_tokens_map.json", "tokenizer.model", "added_tokens.json", "chat_template.jinja",
            "generation_config.json");
    private static final ObjectMapper JSON = new ObjectMapper();

    private ModelFiles() {}

    /**
     * The {@code config.json} of {@code modelDir} as an editable JSON object.
     *
     * @throws ModelException naming the file when it is missing, not JSON or not an object
     */
    public static ObjectNode readConfig(Path modelDir) throws ModelException {
        Path file = modelDir.resolve("config.json");
        if (!Files.isRegularFile(file)) {
            throw new ModelException(file + ": missing (a Hugging Face model directory needs config.json)");
        }
        try {
            if (JSON.readTree(file.toFile()) instanceof ObjectNode node) {
                return node;
            }
            throw new ModelException(file + ": expected a JSON object");
        } catch (IOException e) {
            throw new ModelException(file + ": not valid JSON: " + e.getMessage().lines().findFirst().orElse(""), e);
        }
    }

    /**
     * Writes {@code config} as an indented {@code config.json} into {@code modelDir}, each dtype and RoPE fact in
     * both transformers 4.x and 5.x spellings ({@link ConfigSpellings}).
     */
    public static void writeConfig(Path modelDir, ObjectNode config) throws IOException {
        JSON.writer().with(SerializationFeature.INDENT_OUTPUT).writeValue(modelDir.resolve("config.json").toFile(),
                ConfigSpellings.both(config));
    }

    /**
     * Copies the tokenizer and generation files that {@code source} has into {@code target}, each atomically
     * (replacing one there); returns their names.
     */
    public static List<String> copyCompanionFiles(Path source, Path target) throws IOException {
        List<String> copied = new ArrayList<>();
        for (String name : COMPANION_FILES) {
            Path file = source.resolve(name);
            if (Files.isRegularFile(file)) {
                AtomicFiles.copy(file, target.resolve(name));
                copied.add(name);
            }
        }
        return copied;
    }
}
