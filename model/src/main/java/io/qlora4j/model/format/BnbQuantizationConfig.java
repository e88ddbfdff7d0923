package io.qlora4j.model.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

/**
 * transformers' {@code BitsAndBytesConfig.to_dict()} as config.json carries it (keys sorted, as transformers writes
 * them), shared by the 4-bit and the 8-bit format, and the flags that tell the two apart when reading one.
 */
final class BnbQuantizationConfig {
    static final String QUANT_METHOD = "bitsandbytes";

    private BnbQuantizationConfig() {}

    /**
     * The config of a 4-bit ({@code fourBit}) or 8-bit checkpoint. An 8-bit one carries transformers' defaults for
     * the 4-bit fields (compute dtype float32, type fp4, no double quantization), as {@code load_in_8bit=True}
     * leaves them.
     */
    static ObjectNode of(boolean fourBit, String computeDtype, String quantType, boolean doubleQuant,
            double threshold) {
        ObjectNode q = new ObjectMapper().createObjectNode();
        q.put("_load_in_4bit", fourBit);
        q.put("_load_in_8bit", !fourBit);
        q.put("bnb_4bit_compute_dtype", computeDtype);
        q.put("bnb_4bit_quant_storage", "uint8");
        q.put("bnb_4bit_quant_type", quantType);
        q.put("bnb_4bit_use_double_quant", doubleQuant);
        q.put("llm_int8_enable_fp32_cpu_offload", false);
        q.put("llm_int8_has_fp16_weight", false);
        q.putNull("llm_int8_skip_modules");
        q.put("llm_int8_threshold", threshold);
        q.put("load_in_4bit", fourBit);
        q.put("load_in_8bit", !fourBit);
        q.put("quant_method", QUANT_METHOD);
        return q;
    }

    /**
     * Whether {@code config} is a bitsandbytes config with {@code load_in_4bit} (or {@code load_in_8bit}) set.
     *
     * @throws IllegalArgumentException when it sets both: the 4-bit reading would win by the registry's order while
     *     the config says 8-bit as well (transformers' BitsAndBytesConfig refuses both too)
     */
    static boolean isBnb(JsonNode config, boolean fourBit) {
        if (!QUANT_METHOD.equals(config.path("quant_method").asText())) {
            return false;
        }
        if (flag(config, "load_in_4bit") && flag(config, "load_in_8bit")) {
            throw new IllegalArgumentException("load_in_4bit and load_in_8bit are both true; a bitsandbytes checkpoint"
                    + " is stored in one of them");
        }
        return flag(config, fourBit ? "load_in_4bit" : "load_in_8bit");
    }

    /** Whether {@code name} or transformers' private {@code _name} is true. */
    private static boolean flag(JsonNode config, String name) {
        return config.path(name).asBoolean(false) || config.path("_" + name).asBoolean(false);
    }
}
