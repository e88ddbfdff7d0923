package io.qlora4j.model.llama;

import com.fasterxml.jackson.databind.JsonNode;
import io.qlora4j.model.ModelException;
import java.util.ArrayList;
import java.util.List;

/** Typed access to the keys of one JSON object, with one-line errors naming the file and key path. */
final class JsonFields {
    private final JsonNode node;
    private final String source;
    private final String prefix;

    JsonFields(JsonNode node, String source, String prefix) {
        this.node = node;
        this.source = source;
        this.prefix = prefix;
    }

    boolean has(String key) {
        JsonNode v = node.get(key);
        return v != null && !v.isNull();
    }

    /** The nested object at key, or null when absent or JSON null. */
    JsonFields object(String key) throws ModelException {
        if (!has(key)) {
            return null;
        }
        JsonNode v = node.get(key);
        if (!v.isObject()) {
            throw error(key, "must be an object", v);
        }
        return new JsonFields(v, source, prefix + key + ".");
    }

    int requiredInt(String key) throws ModelException {
        require(key);
        return optInt(key, 0);
    }

    int optInt(String key, int defaultValue) throws ModelException {
        if (!has(key)) {
            return defaultValue;
        }
        JsonNode v = node.get(key);
        if (!v.canConvertToExactIntegral() || !v.canConvertToInt()) {
            throw error(key, "must be an integer", v);
        }
        return v.asInt();
    }

    Integer optInteger(String key) throws ModelException {
        return has(key) ? optInt(key, 0) : null;
    }

    double requiredDouble(String key) throws ModelException {
        require(key);
        return optDouble(key, 0);
    }

    void require(String key) throws ModelException {
        if (!has(key)) {
            throw new ModelException(source + ": missing required key '" + prefix + key + "'");
        }
    }

    double optDouble(String key, double defaultValue) throws ModelException {
        if (!has(key)) {
            return defaultValue;
        }
        JsonNode v = node.get(key);
        if (!v.isNumber()) {
            throw error(key, "must be a number", v);
        }
        return v.asDouble();
    }

    boolean optBoolean(String key, boolean defaultValue) throws ModelException {
        if (!has(key)) {
            return defaultValue;
        }
        JsonNode v = node.get(key);
        if (!v.isBoolean()) {
            throw error(key, "must be true or false", v);
        }
        return v.asBoolean();
    }

    String optString(String key, String defaultValue) throws ModelException {
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
    List<Integer> intOrIntList(String key) throws ModelException {
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

    ModelException error(String key, String what, JsonNode found) {
        return new ModelException(source + ": key '" + prefix + key + "' " + what + ", found " + found);
    }

    /** A rule broken by this object as a whole (e.g. inconsistent llama3 factors). */
    ModelException invalid(String message) {
        String where = prefix.isEmpty() ? "" : prefix.substring(0, prefix.length() - 1) + ": ";
        return new ModelException(source + ": " + where + message);
    }

    ModelException unsupported(String key, String value, String supported) {
        return new ModelException(
                source + ": " + prefix + key + " '" + value + "' is not supported (supported: " + supported + ")");
    }
}
