package io.qlora4j.model.decoder;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.ModelException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Typed access to the keys of one config.json object, with one-line errors naming the file and key path: what a
 * {@link ModelFamily} reads its config through. A key that is absent or JSON null takes the caller's default.
 */
public final class ConfigFields {
    private static final ObjectMapper JSON = new ObjectMapper();

    private final JsonNode node;
    private final String source;
    private final String prefix;

    private ConfigFields(JsonNode node, String source, String prefix) {
        this.node = node;
        this.source = source;
        this.prefix = prefix;
    }

    /**
     * Reads {@code configJson}; a missing file, invalid JSON or a non-object is a one-line error naming the file
     * (and the line and column of a syntax error).
     */
    public static ConfigFields read(Path configJson) throws ModelException {
        String text;
        try {
            text = Files.readString(configJson, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new ModelException(configJson + ": file not found", e);
        } catch (IOException e) {
            throw new ModelException(configJson + ": cannot read (" + e.getMessage() + ")", e);
        }
        return parse(text, configJson.toString());
    }

    /** Parses config.json text; {@code source} names it in error messages. */
    public static ConfigFields parse(String json, String source) throws ModelException {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            String where = e.getLocation() == null ? ""
                    : " at line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr();
            throw new ModelException(source + ": not valid JSON" + where + " (" + e.getOriginalMessage() + ")", e);
        }
        if (root == null || !root.isObject()) {
            throw new ModelException(source + ": expected a JSON object");
        }
        return new ConfigFields(root, source, "");
    }

    /** The file these fields come from, for messages. */
    public String source() {
        return source;
    }

    /** Whether {@code key} is written at all, JSON null included (where null and absent mean different things). */
    public boolean contains(String key) {
        return node.has(key);
    }

    /** Whether {@code key} is present with a value other than JSON null. */
    public boolean has(String key) {
        JsonNode v = node.get(key);
        return v != null && !v.isNull();
    }

    /** The nested object at key, or null when absent or JSON null. */
    public ConfigFields object(String key) throws ModelException {
        if (!has(key)) {
            return null;
        }
        JsonNode v = node.get(key);
        if (!v.isObject()) {
            throw error(key, "must be an object", v);
        }
        return new ConfigFields(v, source, prefix + key + ".");
    }

    /** The integer at {@code key}; absent is an error naming the key. */
    public int requiredInt(String key) throws ModelException {
        require(key);
        return optInt(key, 0);
    }

    /** The integer at {@code key}, or {@code defaultValue} when absent or null. */
    public int optInt(String key, int defaultValue) throws ModelException {
        if (!has(key)) {
            return defaultValue;
        }
        JsonNode v = node.get(key);
        if (!v.canConvertToExactIntegral() || !v.canConvertToInt()) {
            throw error(key, "must be an integer", v);
        }
        return v.asInt();
    }

    /** The integer at {@code key}, or null when absent or null. */
    public Integer optInteger(String key) throws ModelException {
        return has(key) ? optInt(key, 0) : null;
    }

    /** The number at {@code key}; absent is an error naming the key. */
    public double requiredDouble(String key) throws ModelException {
        require(key);
        return optDouble(key, 0);
    }

    /** Fails, naming the key, when {@code key} is absent or null. */
    public void require(String key) throws ModelException {
        if (!has(key)) {
            throw new ModelException(source + ": missing required key '" + prefix + key + "'");
        }
    }

    /** The number at {@code key}, or {@code defaultValue} when absent or null. */
    public double optDouble(String key, double defaultValue) throws ModelException {
        if (!has(key)) {
            return defaultValue;
        }
        JsonNode v = node.get(key);
        if (!v.isNumber()) {
            throw error(key, "must be a number", v);
        }
        return v.asDouble();
    }

    /**
     * The number at {@code key} where absent and null differ: {@code absent} when the key is not written, null when
     * it is JSON null (transformers' "disabled", e.g. a soft-cap of None).
     */
    public Double optNullableDouble(String key, Double absent) throws ModelException {
        if (!contains(key)) {
            return absent;
        }
        return has(key) ? optDouble(key, 0) : null;
    }

    /** The list of numbers at {@code key}; absent or any other value is an error naming the key. */
    public List<Double> requiredDoubleList(String key) throws ModelException {
        require(key);
        JsonNode v = node.get(key);
        List<Double> out = new ArrayList<>();
        for (JsonNode item : v.isArray() ? v : List.<JsonNode>of()) {
            if (!item.isNumber()) {
                throw error(key, "must be a list of numbers", v);
            }
            out.add(item.asDouble());
        }
        if (!v.isArray()) {
            throw error(key, "must be a list of numbers", v);
        }
        return out;
    }

    /** The list of strings at {@code key}, or null when absent or null; any other value is an error naming the key. */
    public List<String> optStringList(String key) throws ModelException {
        if (!has(key)) {
            return null;
        }
        JsonNode v = node.get(key);
        List<String> out = new ArrayList<>();
        for (JsonNode item : v.isArray() ? v : List.<JsonNode>of()) {
            if (!item.isTextual()) {
                throw error(key, "must be a list of strings", v);
            }
            out.add(item.asText());
        }
        if (!v.isArray()) {
            throw error(key, "must be a list of strings", v);
        }
        return out;
    }

    /** The boolean at {@code key}, or {@code defaultValue} when absent or null. */
    public boolean optBoolean(String key, boolean defaultValue) throws ModelException {
        if (!has(key)) {
            return defaultValue;
        }
        JsonNode v = node.get(key);
        if (!v.isBoolean()) {
            throw error(key, "must be true or false", v);
        }
        return v.asBoolean();
    }

    /** The string at {@code key}, or {@code defaultValue} when absent or null. */
    public String optString(String key, String defaultValue) throws ModelException {
        if (!has(key)) {
            return defaultValue;
        }
        JsonNode v = node.get(key);
        if (!v.isTextual()) {
            throw error(key, "must be a string", v);
        }
        return v.asText();
    }

    /** An integer or a list of integers (as eos_token_id may be); empty when absent. */
    public List<Integer> intOrIntList(String key) throws ModelException {
        List<Integer> out = new ArrayList<>();
        if (!has(key)) {
            return out;
        }
        JsonNode v = node.get(key);
        if (v.isArray()) {
            for (JsonNode item : v) {
                if (!item.canConvertToExactIntegral() || !item.canConvertToInt()) {
                    throw error(key, "must be an integer or a list of integers", v);
                }
                out.add(item.asInt());
            }
        } else {
            out.add(optInt(key, 0));
        }
        return out;
    }

    /** An error naming the file and key: {@code what} the value must be, and the value found. */
    public ModelException error(String key, String what, JsonNode found) {
        return new ModelException(source + ": key '" + prefix + key + "' " + what + ", found " + found);
    }

    /** A rule broken by this object as a whole (e.g. inconsistent llama3 factors), naming the file and object. */
    public ModelException invalid(String message) {
        String where = prefix.isEmpty() ? "" : prefix.substring(0, prefix.length() - 1) + ": ";
        return new ModelException(source + ": " + where + message);
    }

    /** A value qlora4j does not implement, named with the file, key and the supported values. */
    public ModelException unsupported(String key, String value, String supported) {
        return new ModelException(
                source + ": " + prefix + key + " '" + value + "' is not supported (supported: " + supported + ")");
    }
}
