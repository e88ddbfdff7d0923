package io.qlora4j.quant;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.function.Function;

/**
 * The state-dict layout in which transformers + bitsandbytes save a 4-bit linear weight
 * ({@code Params4bit} with its {@code QuantState}, packed for safetensors): the packed codes under
 * the weight's own key, then {@code .absmax}, {@code .quant_map}, with double quantization
 * {@code .nested_absmax} and {@code .nested_quant_map}, and the JSON of the remaining fields under
 * {@code .quant_state.bitsandbytes__nf4} (or {@code __fp4}), byte for byte as Python writes it.
 */
public final class BnbStateDict {
    private static final int NESTED_BLOCKSIZE = 256;

    /**
     * One stored tensor: its full key, safetensors dtype name ({@code U8} or {@code F32}), shape and
     * little-endian bytes.
     */
    public record Entry(String key, String dtype, long[] shape, byte[] data) {}

    private BnbStateDict() {}

    /**
     * The entries that store {@code t} under {@code weightKey} (e.g.
     * {@code model.layers.0.self_attn.q_proj.weight}).
     *
     * @param originalDtype the torch dtype the weight had before quantization:
     *     {@code bfloat16}, {@code float16} or {@code float32}
     */
    public static List<Entry> entries(String weightKey, QuantizedTensor t, String originalDtype) {
        List<Entry> out = new ArrayList<>();
        out.add(new Entry(weightKey, "U8", new long[] {t.packed().length, 1}, t.packed()));
        DoubleQuantizedScales dq = t.doubleQuant();
        if (dq == null) {
            out.add(new Entry(weightKey + ".absmax", "F32", new long[] {t.absmax().length}, floatBytes(t.absmax())));
        } else {
            out.add(new Entry(weightKey + ".absmax", "U8", new long[] {dq.codes().length}, dq.codes()));
        }
        out.add(new Entry(weightKey + ".quant_map", "F32", new long[] {16}, floatBytes(t.type().codebook())));
        if (dq != null) {
            out.add(new Entry(weightKey + ".nested_absmax", "F32", new long[] {dq.nestedAbsmax().length},
                    floatBytes(dq.nestedAbsmax())));
            out.add(new Entry(weightKey + ".nested_quant_map", "F32", new long[] {dq.nestedMap().length},
                    floatBytes(dq.nestedMap())));
        }
        byte[] json = quantStateJson(t, originalDtype).getBytes(StandardCharsets.UTF_8);
        out.add(new Entry(quantStateKey(weightKey, t.type()), "U8", new long[] {json.length}, json));
        return out;
    }

    /** Every key this layout may use for a weight, the weight's own key first. */
    public static List<String> keys(String weightKey, QuantType type) {
        return List.of(weightKey, weightKey + ".absmax", weightKey + ".quant_map", weightKey + ".nested_absmax",
                weightKey + ".nested_quant_map", quantStateKey(weightKey, type));
    }

    /** The key of the JSON quant state of a weight stored in this layout. */
    public static String quantStateKey(String weightKey, QuantType type) {
        return weightKey + ".quant_state.bitsandbytes__" + type.jsonName();
    }

    /**
     * Whether {@code key} is one of the side entries (not the weight itself) of this layout, so a
     * loader can skip it when walking a checkpoint.
     */
    public static boolean isSideEntry(String key) {
        return key.endsWith(".absmax") || key.endsWith(".quant_map") || key.endsWith(".nested_absmax")
                || key.endsWith(".nested_quant_map") || key.contains(".quant_state.bitsandbytes__");
    }

    /** The quant type whose JSON state accompanies {@code weightKey}, or null when the weight is not 4-bit. */
    public static QuantType detect(String weightKey, Function<String, Boolean> contains) {
        for (QuantType type : QuantType.values()) {
            if (contains.apply(quantStateKey(weightKey, type))) {
                return type;
            }
        }
        return null;
    }

    /**
     * Rebuilds the quantized tensor stored under {@code weightKey}.
     *
     * @param lookup returns the entry of a key, or null when the checkpoint lacks it
     * @return the tensor, its original dtype available through {@link #originalDtype}
     * @throws QuantFormatException naming the missing or inconsistent key
     */
    public static QuantizedTensor read(String weightKey, QuantType type, Function<String, Entry> lookup)
            throws QuantFormatException {
        JsonNode state = state(weightKey, type, lookup);
        String stateKey = quantStateKey(weightKey, type);
        if (!type.jsonName().equals(state.path("quant_type").asText())) {
            throw new QuantFormatException(stateKey + ": quant_type '" + state.path("quant_type").asText()
                    + "' does not match the key suffix " + type.jsonName());
        }
        int blocksize = state.path("blocksize").asInt(-1);
        JsonNode shapeNode = state.path("shape");
        if (!shapeNode.isArray() || blocksize <= 0) {
            throw new QuantFormatException(stateKey + ": needs a positive blocksize and a shape list");
        }
        long[] shape = new long[shapeNode.size()];
        for (int i = 0; i < shape.length; i++) {
            shape[i] = shapeNode.get(i).asLong();
        }
        Entry quantMap = require(lookup, weightKey + ".quant_map", "F32");
        if (!Arrays.equals(floats(quantMap), type.codebook())) {
            throw new QuantFormatException(weightKey + ".quant_map: differs from the " + type.jsonName()
                    + " code book; custom code books are not supported");
        }
        byte[] packed = require(lookup, weightKey, "U8").data();
        boolean nested = state.has("nested_offset");
        try {
            if (!nested) {
                float[] absmax = floats(require(lookup, weightKey + ".absmax", "F32"));
                return new QuantizedTensor(type, shape, blocksize, packed, absmax, null);
            }
            byte[] codes = require(lookup, weightKey + ".absmax", "U8").data();
            float[] nestedAbsmax = floats(require(lookup, weightKey + ".nested_absmax", "F32"));
            float[] nestedMap = floats(require(lookup, weightKey + ".nested_quant_map", "F32"));
            int nestedBlocksize = state.path("nested_blocksize").asInt(NESTED_BLOCKSIZE);
            float offset = (float) state.path("nested_offset").asDouble();
            return new QuantizedTensor(type, shape, blocksize, packed, null,
                    new DoubleQuantizedScales(codes, nestedAbsmax, offset, nestedBlocksize, nestedMap));
        } catch (IllegalArgumentException e) {
            throw new QuantFormatException(weightKey + ": " + e.getMessage());
        }
    }

    /** The dtype ({@code bfloat16}, {@code float16}, {@code float32}) recorded for the weight before quantization. */
    public static String originalDtype(String weightKey, QuantType type, Function<String, Entry> lookup)
            throws QuantFormatException {
        return state(weightKey, type, lookup).path("dtype").asText("float32");
    }

    static String quantStateJson(QuantizedTensor t, String originalDtype) {
        StringBuilder json = new StringBuilder("{\"quant_type\": \"").append(t.type().jsonName())
                .append("\", \"blocksize\": ").append(t.blocksize())
                .append(", \"dtype\": \"").append(originalDtype.toLowerCase(Locale.ROOT))
                .append("\", \"shape\": [");
        for (int i = 0; i < t.shape().length; i++) {
            json.append(i == 0 ? "" : ", ").append(t.shape()[i]);
        }
        json.append(']');
        DoubleQuantizedScales dq = t.doubleQuant();
        if (dq != null) {
            json.append(", \"nested_blocksize\": ").append(dq.nestedBlocksize())
                    .append(", \"nested_dtype\": \"float32\", \"nested_offset\": ")
                    .append(PythonFloat.repr(dq.offset()));
        }
        return json.append('}').toString();
    }

    private static JsonNode state(String weightKey, QuantType type, Function<String, Entry> lookup)
            throws QuantFormatException {
        String key = quantStateKey(weightKey, type);
        Entry entry = require(lookup, key, "U8");
        try {
            JsonNode node = new ObjectMapper().readTree(entry.data());
            if (node == null || !node.isObject()) {
                throw new QuantFormatException(key + ": expected a JSON object");
            }
            return node;
        } catch (IOException e) {
            throw new QuantFormatException(key + ": not valid JSON: " + e.getMessage().lines().findFirst().orElse(""));
        }
    }

    private static Entry require(Function<String, Entry> lookup, String key, String dtype) throws QuantFormatException {
        Entry e = lookup.apply(key);
        if (e == null) {
            throw new QuantFormatException(key + ": missing (a bitsandbytes 4-bit weight needs it)");
        }
        if (!e.dtype().equals(dtype)) {
            throw new QuantFormatException(key + ": dtype " + e.dtype() + ", expected " + dtype);
        }
        return e;
    }

    private static byte[] floatBytes(float[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return b.array();
    }

    /** The F32 entry's values, checked finite ({@link QuantFormatException#requireFinite}). */
    private static float[] floats(Entry e) throws QuantFormatException {
        float[] out = new float[e.data().length / 4];
        ByteBuffer.wrap(e.data()).order(ByteOrder.LITTLE_ENDIAN).asFloatBuffer().get(out);
        QuantFormatException.requireFinite(e.key(), out);
        return out;
    }
}
