package io.qlora4j.data;

import com.fasterxml.jackson.databind.JsonNode;

import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Which record fields hold what, as LLaMA-Factory's {@code DatasetAttr} columns and tags, with its
 * defaults: alpaca {@code instruction}/{@code input}/{@code output} (history and system unmapped),
 * sharegpt {@code conversations} with {@code from}/{@code value} and the role tags
 * {@code human}/{@code gpt}/{@code observation}/{@code function_call}/{@code system}.
 * An unmapped (null) column is not read.
 */
record DatasetColumns(Map<String, String> names) {

    /** Column and tag keys LLaMA-Factory knows; the multimodal and preference ones are refused when mapped. */
    private static final Set<String> KNOWN = Set.of("prompt", "query", "response", "history", "messages", "system",
            "tools", "images", "videos", "audios", "chosen", "rejected", "kto_tag", "role_tag", "content_tag",
            "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag");

    /** LLaMA-Factory's defaults for a dataset_info.json entry without {@code columns}/{@code tags}. */
    static final DatasetColumns DEFAULTS = new DatasetColumns(Map.of("prompt", "instruction", "query", "input",
            "response", "output", "messages", "conversations", "role_tag", "from", "content_tag", "value",
            "user_tag", "human", "assistant_tag", "gpt", "observation_tag", "observation"))
            .with("function_tag", "function_call").with("system_tag", "system");

    /** For a file named directly in {@code dataset:}: the defaults plus {@code system} and {@code history}. */
    static final DatasetColumns DIRECT = DEFAULTS.with("system", "system").with("history", "history");

    /**
     * The defaults overridden by a dataset_info.json entry's {@code columns} and {@code tags}
     * objects; an unknown key fails naming it.
     */
    static DatasetColumns of(String where, JsonNode columns, JsonNode tags) throws DataException {
        DatasetColumns out = DEFAULTS;
        for (JsonNode node : new JsonNode[] {columns, tags}) {
            if (node == null || node.isNull()) {
                continue;
            }
            for (Map.Entry<String, JsonNode> e : node.properties()) {
                if (!KNOWN.contains(e.getKey())) {
                    throw new DataException(where + ": unknown key '" + e.getKey() + "' in "
                            + (node == columns ? "columns" : "tags") + "; known: " + String.join(", ", KNOWN));
                }
                out = out.with(e.getKey(), e.getValue().isNull() ? null : e.getValue().asText());
            }
        }
        return out;
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
