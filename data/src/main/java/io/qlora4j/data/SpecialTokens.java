package io.qlora4j.data;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.Map;

/**
 * The special tokens of a Hugging Face model directory, as transformers resolves them: bos, eos
 * and pad from {@code tokenizer_config.json} (string or AddedToken object), their ids from the
 * added tokens of {@code tokenizer.json}; when the config names no bos/eos, the ids of
 * {@code config.json} / {@code generation_config.json} ({@code bos_token_id}, {@code eos_token_id},
 * the first of a list). A token that cannot be resolved is {@code null} / id -1.
 */
record SpecialTokens(
        Map<String, Integer> addedTokens,
        String bosToken,
        int bosId,
        String eosToken,
        int eosId,
        String padToken,
        int padId) {

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Reads the special tokens of the directory holding {@code tokenizerJson}. */
    static SpecialTokens read(Path tokenizerJson) throws DataException {
        Map<String, Integer> added = readAddedTokens(tokenizerJson);
        Path dir = tokenizerJson.toAbsolutePath().getParent();
        Path configFile = dir.resolve("tokenizer_config.json");
        JsonNode config = readOptional(configFile);
        JsonNode modelConfig = readOptional(dir.resolve("config.json"));
        JsonNode generation = readOptional(dir.resolve("generation_config.json"));
        if (config != null && config.has("added_tokens_decoder")) {
            config.get("added_tokens_decoder").properties().forEach(e -> {
                JsonNode content = e.getValue().get("content");
                if (content != null && content.isTextual()) {
                    added.putIfAbsent(content.asText(), Integer.parseInt(e.getKey()));
                }
            });
        }
        Map<Integer, String> byId = new HashMap<>();
        added.forEach((token, id) -> byId.putIfAbsent(id, token));

        String bos = tokenString(config, configFile, "bos_token");
        int bosId = bos != null ? added.getOrDefault(bos, -1) : firstId(generation, modelConfig, "bos_token_id");
        if (bos == null && bosId >= 0) {
            bos = byId.get(bosId);
        }
        String eos = tokenString(config, configFile, "eos_token");
        int eosId = eos != null ? added.getOrDefault(eos, -1) : firstId(generation, modelConfig, "eos_token_id");
        if (eos == null && eosId >= 0) {
            eos = byId.get(eosId);
        }
        String pad = tokenString(config, configFile, "pad_token");
        int padId = pad != null ? added.getOrDefault(pad, -1) : -1;
        return new SpecialTokens(Map.copyOf(added), bos, bosId, eos, eosId, pad, padId);
    }

    /** Streams {@code tokenizer.json} and keeps only its {@code added_tokens} (content -> id). */
    private static Map<String, Integer> readAddedTokens(Path tokenizerJson) throws DataException {
        Map<String, Integer> added = new HashMap<>();
        try (JsonParser parser = JSON.createParser(tokenizerJson.toFile())) {
            if (parser.nextToken() != JsonToken.START_OBJECT) {
                throw new DataException(tokenizerJson + ": expected a JSON object (a tokenizer.json)");
            }
            while (parser.nextToken() == JsonToken.FIELD_NAME) {
                String field = parser.currentName();
                parser.nextToken();
                if ("added_tokens".equals(field) && parser.currentToken() == JsonToken.START_ARRAY) {
                    JsonNode tokens = parser.readValueAsTree();
                    for (JsonNode token : tokens) {
                        added.put(token.path("content").asText(), token.path("id").asInt());
                    }
                } else {
                    parser.skipChildren();
                }
            }
        } catch (IOException e) {
            throw new DataException(tokenizerJson + ": cannot read tokenizer.json: " + RecordReader.firstLine(e.getMessage()),
                    e);
        }
        return added;
    }

    /** The JSON object in {@code file}, null when there is none; a file holding anything but an object is refused. */
    private static JsonNode readOptional(Path file) throws DataException {
        if (!Files.isRegularFile(file)) {
            return null;
        }
        try {
            JsonNode node = JSON.readTree(file.toFile());
            if (node == null || !node.isObject()) {
                throw new DataException(file + ": expected a JSON object");
            }
            return node;
        } catch (IOException e) {
            throw new DataException(file + ": invalid JSON: " + RecordReader.firstLine(e.getMessage()), e);
        }
    }

    /**
     * A token given as a plain string or as an AddedToken object {@code {"content": ...}}, null when unset. Any other
     * value is refused naming {@code file} and {@code key}: taken as unset, or by the text of a number, it let another
     * token stand in for the one the file meant.
     */
    private static String tokenString(JsonNode config, Path file, String key) throws DataException {
        if (config == null) {
            return null;
        }
        JsonNode node = config.get(key);
        if (node == null || node.isNull()) {
            return null;
        }
        if (node.isTextual()) {
            return node.asText();
        }
        if (node.path("content").isTextual()) {
            return node.path("content").asText();
        }
        throw new DataException(file + ": " + key + " must be a string or an object with a string \"content\", found "
                + node);
    }

    private static int firstId(JsonNode first, JsonNode second, String key) {
        for (JsonNode config : new JsonNode[] {first, second}) {
            JsonNode node = config == null ? null : config.get(key);
            if (node != null && node.isArray() && !node.isEmpty()) {
                node = node.get(0);
            }
            if (node != null && node.isInt()) {
                return node.asInt();
            }
        }
        return -1;
    }
}
