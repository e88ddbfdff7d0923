package io.qlora4j.model.checkpoint;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.util.List;

/**
 * A config.json written so that transformers 4.x and 5.x both read it: each fact in both spellings. transformers
 * 5 keeps the RoPE settings in one {@code rope_parameters} object ({@code rope_type}, {@code rope_theta},
 * {@code partial_rotary_factor}, {@code original_max_position_embeddings} and the scaling fields) and names the
 * weights' dtype {@code dtype}; 4.x reads {@code rope_theta}, {@code partial_rotary_factor} and
 * {@code original_max_position_embeddings} at the top level, the scaling fields in {@code rope_scaling} (null for
 * the default rope) and the dtype as {@code torch_dtype}. A key already present is kept; per-layer-type
 * {@code rope_parameters} (one object per attention type, as Gemma 3 has) are left as they are.
 */
final class ConfigSpellings {
    private static final List<String> TOP_LEVEL = List.of("rope_theta", "partial_rotary_factor");

    private ConfigSpellings() {}

    /** Adds to {@code config} the spelling of each dtype and RoPE fact that it lacks; returns it. */
    static ObjectNode both(ObjectNode config) {
        copyIfAbsent(config, "torch_dtype", "dtype");
        copyIfAbsent(config, "dtype", "torch_dtype");
        JsonNode parameters = config.get("rope_parameters");
        if (parameters instanceof ObjectNode rope && rope.has("rope_theta")) {
            addLegacy(config, rope);
        } else if (parameters == null && config.has("rope_theta")) {
            config.set("rope_parameters", parameters(config));
        }
        return config;
    }

    /** The 4.x keys from a 5.x {@code rope_parameters} object. */
    private static void addLegacy(ObjectNode config, ObjectNode rope) {
        for (String key : TOP_LEVEL) {
            if (rope.has(key) && !config.has(key)) {
                config.set(key, rope.get(key));
            }
        }
        String type = rope.path("rope_type").asText(rope.path("type").asText("default"));
        boolean longrope = type.equals("longrope");
        if (rope.has("original_max_position_embeddings") && !config.has("original_max_position_embeddings")
                && longrope) {
            // Phi-3's 4.x config reads it at the top level and wants exactly type, short_factor, long_factor below
            config.set("original_max_position_embeddings", rope.get("original_max_position_embeddings"));
        }
        if (config.has("rope_scaling")) {
            return;
        }
        if (type.equals("default")) {
            config.putNull("rope_scaling");
            return;
        }
        ObjectNode scaling = rope.deepCopy();
        scaling.remove(TOP_LEVEL);
        if (longrope) {
            scaling.remove("original_max_position_embeddings");
        }
        scaling.put("rope_type", type);
        config.set("rope_scaling", scaling);
    }

    /** A 5.x {@code rope_parameters} object from the 4.x keys. */
    private static ObjectNode parameters(ObjectNode config) {
        ObjectNode rope = config.objectNode();
        JsonNode scaling = config.get("rope_scaling");
        String type = scaling == null || scaling.isNull() ? "default"
                : scaling.path("rope_type").asText(scaling.path("type").asText("default"));
        rope.put("rope_type", type);
        rope.set("rope_theta", config.get("rope_theta"));
        if (scaling instanceof ObjectNode fields) {
            fields.properties().forEach(e -> {
                if (!e.getKey().equals("type") && !e.getKey().equals("rope_type")) {
                    rope.set(e.getKey(), e.getValue());
                }
            });
            if (config.has("original_max_position_embeddings") && !rope.has("original_max_position_embeddings")) {
                rope.set("original_max_position_embeddings", config.get("original_max_position_embeddings"));
            }
        }
        if (config.has("partial_rotary_factor")) {
            rope.set("partial_rotary_factor", config.get("partial_rotary_factor"));
        }
        return rope;
    }

    private static void copyIfAbsent(ObjectNode config, String target, String source) {
        if (!config.has(target) && config.hasNonNull(source)) {
            config.set(target, config.get(source));
        }
    }
}
