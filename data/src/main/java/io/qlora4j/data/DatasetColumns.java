package io.qlora4j.data;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Which record fields hold what, as LLaMA-Factory's {@code DatasetAttr} columns and tags, with its
 * defaults: alpaca {@code instruction}/{@code input}/{@code output} (history and system unmapped),
 * sharegpt {@code conversations} with {@code from}/{@code value} and the role tags
 * {@code human}/{@code gpt}/{@code observation}/{@code function_call}/{@code system}.
 * An unmapped (null) column is not read.
 *
 * <p>As in {@code DatasetAttr.join}, an entry's {@code columns} object replaces every column and its {@code tags}
 * object every tag: what the object does not name is unmapped, not left at its default (a {@code columns} of prompt
 * and response alone reads no {@code input}; a {@code tags} without {@code system_tag} takes no leading system
 * message).
 */
record DatasetColumns(Map<String, String> names) {

    /** Column keys LLaMA-Factory knows; the multimodal and preference ones are refused when mapped. */
    private static final List<String> COLUMNS = List.of("prompt", "query", "response", "history", "messages", "system",
            "tools", "images", "videos", "audios", "chosen", "rejected", "kto_tag");

    /** Tag keys LLaMA-Factory knows (sharegpt). */
    private static final List<String> TAGS = List.of("role_tag", "content_tag", "user_tag", "assistant_tag",
            "observation_tag", "function_tag", "system_tag");

    /** LLaMA-Factory's defaults for a dataset_info.json entry without {@code columns}/{@code tags}. */
    static final DatasetColumns DEFAULTS = new DatasetColumns(Map.of("prompt", "instruction", "query", "input",
            "response", "output", "messages", "conversations", "role_tag", "from", "content_tag", "value",
            "user_tag", "human", "assistant_tag", "gpt", "observation_tag", "observation"))
            .with("function_tag", "function_call").with("system_tag", "system");

    /** For a file named directly in {@code dataset:}: the defaults plus {@code system} and {@code history}. */
    static final DatasetColumns DIRECT = DEFAULTS.with("system", "system").with("history", "history");

    /**
     * The defaults with a dataset_info.json entry's {@code columns} and {@code tags} objects (either may be absent)
     * in place of their columns and tags; an object of another kind, or a key the object cannot hold, fails naming it.
     */
    static DatasetColumns of(String where, JsonNode columns, JsonNode tags) throws DataException {
        return DEFAULTS.replaced(where, "columns", columns, COLUMNS).replaced(where, "tags", tags, TAGS);
    }

    /** This mapping with every one of {@code keys} unmapped but those {@code object} names, or unchanged without it. */
    private DatasetColumns replaced(String where, String field, JsonNode object, List<String> keys)
            throws DataException {
        if (object == null) {
            return this;
        }
        if (!object.isObject()) {
            throw new DataException(where + ": '" + field + "' must be an object of " + keys.get(0) + ", ... names,"
                    + " not " + object);
        }
        DatasetColumns out = this;
        for (String key : keys) {
            out = out.with(key, null);
        }
        for (Map.Entry<String, JsonNode> e : object.properties()) {
            if (!keys.contains(e.getKey())) {
                String other = (keys == COLUMNS ? TAGS : COLUMNS).contains(e.getKey())
                        ? " (it belongs in '" + (keys == COLUMNS ? "tags" : "columns") + "')" : "";
                throw new DataException(where + ": unknown key '" + e.getKey() + "' in " + field + other + "; known: "
                        + String.join(", ", keys));
            }
            if (!e.getValue().isNull() && !e.getValue().isTextual()) {
                throw new DataException(where + ": " + field + "." + e.getKey() + " must be a field name (a string),"
                        + " not " + e.getValue());
            }
            out = out.with(e.getKey(), e.getValue().isNull() ? null : e.getValue().asText());
        }
        return out;
    }

    /**
     * Refuses a sharegpt mapping without the message list, role or content field: an entry whose {@code columns} or
     * {@code tags} leave one out (they replace every default) has no way to read a conversation.
     */
    void requireSharegpt(String where) throws DataException {
        for (String key : List.of("messages", "role_tag", "content_tag")) {
            if (get(key) == null) {
                String field = key.equals("messages") ? "columns" : "tags";
                throw new DataException(where + ": sharegpt formatting needs '" + key + "', which the entry's " + field
                        + " leave unmapped; '" + field + "' replaces all of the defaults, so name every one it uses");
            }
        }
    }

    /** The record fields the column keys are mapped to (not the tags'). */
    Set<String> columnFields() {
        Set<String> fields = new TreeSet<>();
        for (String key : COLUMNS) {
            if (names.containsKey(key)) {
                fields.add(names.get(key));
            }
        }
        return fields;
    }

    /** Refuses a mapping whose columns qlora4j cannot train on: {@link #untrainable} of each mapped key. */
    void refuseUntrainable(String where) throws DataException {
        for (String key : List.of("images", "videos", "audios", "chosen", "rejected", "kto_tag")) {
            if (names.containsKey(key)) {
                throw new DataException(where + ": column '" + names.get(key) + "' (" + key + "): " + untrainable(key));
            }
        }
    }

    /**
     * Why a column of this kind cannot be trained, naming the stage it belongs to; null for the columns qlora4j
     * trains on. Such data loaded as text would train the wrong thing (an {@code <image>} placeholder as words,
     * undesirable KTO answers as targets).
     */
    static String untrainable(String key) {
        return switch (key) {
            case "images", "videos", "audios" -> "multimodal training (" + key + ") is not implemented;"
                    + " qlora4j trains text-only models with stage sft or pt";
            case "chosen", "rejected" -> "preference pairs are data for stage rm or dpo, which are not implemented;"
                    + " qlora4j trains stage sft and pt";
            case "kto_tag" -> "KTO feedback labels are data for stage kto, which is not implemented;"
                    + " qlora4j trains stage sft and pt";
            default -> null;
        };
    }

    /** This mapping with one key set (null unmaps it). */
    DatasetColumns with(String key, String value) {
        Map<String, String> copy = new HashMap<>(names);
        if (value == null) {
            copy.remove(key);
        } else {
            copy.put(key, value);
        }
        return new DatasetColumns(Map.copyOf(copy));
    }

    /** The field name mapped to {@code key}, or null when unmapped. */
    String get(String key) {
        return names.get(key);
    }
}
