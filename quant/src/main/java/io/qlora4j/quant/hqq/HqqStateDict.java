package io.qlora4j.quant.hqq;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.quant.BnbStateDict.Entry;
import io.qlora4j.quant.HalfFloats;
import io.qlora4j.quant.QuantFormatException;
import io.qlora4j.quant.Shapes;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.function.Function;

/**
 * The state-dict layout of an {@code HQQLinear} as transformers saves it (hqq's {@code encoded_state_dict}, which
 * safetensors can hold): under the module's prefix {@code W_q} (the packed codes, uint8 or int32 for 3 bits),
 * {@code scale} (the dequantization scale, {@code 1 / s}) and {@code zero}, shaped {@code [1, groups]} along axis 0
 * and {@code [groups, 1]} along axis 1, then the meta entries: {@code nbits}, {@code group_size}, {@code axis}
 * (int32 scalars), {@code shape} (int64), {@code packing}, {@code unpack_view_dtype}, {@code compute_dtype} (ASCII
 * bytes), and the flags {@code view_as_float}, {@code quant_scale}, {@code quant_zero}, {@code offload_meta},
 * {@code encoded_state_dict}, {@code stores_quant_config}, {@code channel_wise}, {@code optimize},
 * {@code round_zero} (uint8 scalars). The bias, if any, is the module's own {@code bias} entry.
 *
 * <p>qlora4j computes in float32, so it writes {@code scale} and {@code zero} as float32 and records
 * {@code compute_dtype} {@code torch.float32}; transformers casts them to its own compute dtype when it loads them.
 * Checkpoints with float16 or bfloat16 scales and zeros load (widened exactly). Quantized scales or zeros
 * ({@code quant_scale}, {@code quant_zero}), offloaded metadata and non-channel-wise tensors are refused by name.
 */
public final class HqqStateDict {
    /** The entry that marks a module stored by HQQ. */
    public static final String CODES = "W_q";

    private static final List<String> META = List.of("nbits", "group_size", "shape", "scale", "zero", "axis",
            "packing", "unpack_view_dtype", "view_as_float", "quant_scale", "quant_zero", "compute_dtype",
            "offload_meta", "encoded_state_dict", "stores_quant_config", "channel_wise", "optimize", "round_zero");

    private HqqStateDict() {}

    /** Every entry name this layout uses under {@code prefix} (bias excluded), {@code W_q} first. */
    public static List<String> keys(String prefix) {
        List<String> keys = new ArrayList<>();
        keys.add(prefix + "." + CODES);
        META.forEach(k -> keys.add(prefix + "." + k));
        return keys;
    }

    /** The entries that store {@code t} as the module at {@code prefix} (e.g. {@code model.layers.0.mlp.up_proj}). */
    public static List<Entry> entries(String prefix, HqqTensor t) {
        HqqParams p = t.params();
        HqqPacking packing = p.packing();
        int rows = t.groupedRows();
        int cols = t.groupedCols();
        long[] metaShape = p.axis() == 0 ? new long[] {1, t.groups()} : new long[] {t.groups(), 1};
        String pre = prefix + ".";
        List<Entry> out = new ArrayList<>();
        out.add(new Entry(pre + CODES, packing.int32Words() ? "I32" : "U8",
                new long[] {packing.packedRows(rows), cols}, t.packed()));
        out.add(int32(pre + "nbits", p.nbits()));
        out.add(int32(pre + "group_size", p.groupSize()));
        ByteBuffer shape = le(8 * t.shape().length);
        Arrays.stream(t.shape()).forEach(shape::putLong);
        out.add(new Entry(pre + "shape", "I64", new long[] {t.shape().length}, shape.array()));
        out.add(new Entry(pre + "scale", "F32", metaShape, floatBytes(t.scale())));
        out.add(new Entry(pre + "zero", "F32", metaShape, floatBytes(t.zero())));
        out.add(int32(pre + "axis", p.axis()));
        out.add(ascii(pre + "packing", packing.id()));
        out.add(ascii(pre + "unpack_view_dtype", packing.unpackViewDtype()));
        out.add(flag(pre + "view_as_float", false));
        out.add(flag(pre + "quant_scale", false));
        out.add(flag(pre + "quant_zero", false));
        out.add(ascii(pre + "compute_dtype", "torch.float32"));
        out.add(flag(pre + "offload_meta", false));
        out.add(flag(pre + "encoded_state_dict", true));
        out.add(flag(pre + "stores_quant_config", true));
        out.add(flag(pre + "channel_wise", true));
        out.add(flag(pre + "optimize", p.optimize()));
        out.add(flag(pre + "round_zero", p.roundZero()));
        return out;
    }

    /**
     * Rebuilds the tensor stored under {@code prefix}. Floating entries may be F32, F16 or BF16.
     *
     * @param lookup the entry of a key, or null when the checkpoint lacks it
     * @throws QuantFormatException naming the key at fault and what was expected
     */
    public static HqqTensor read(String prefix, Function<String, Entry> lookup) throws QuantFormatException {
        String pre = prefix + ".";
        for (String unsupported : new String[] {"quant_scale", "quant_zero", "offload_meta", "view_as_float"}) {
            if (flag(lookup, pre + unsupported, false)) {
                throw new QuantFormatException(pre + unsupported + ": 1, but HQQ "
                        + (unsupported.equals("view_as_float") ? "codes viewed as float" : unsupported.replace('_', ' '))
                        + " is not implemented (expected 0)");
            }
        }
        if (!flag(lookup, pre + "channel_wise", true)) {
            throw new QuantFormatException(pre + "channel_wise: 0, but HQQ without channel-wise groups is not implemented");
        }
        int nbits = integer(lookup, pre + "nbits");
        int groupSize = integer(lookup, pre + "group_size");
        int axis = integer(lookup, pre + "axis");
        HqqParams params;
        try {
            params = new HqqParams(nbits, groupSize, axis, flag(lookup, pre + "optimize", true),
                    flag(lookup, pre + "round_zero", false));
        } catch (IllegalArgumentException e) {
            throw new QuantFormatException(prefix + ": " + e.getMessage());
        }
        HqqPacking packing = params.packing();
        String recorded = text(lookup, pre + "packing");
        if (!recorded.equals(packing.id())) {
            throw new QuantFormatException(pre + "packing: '" + recorded + "' does not match nbits " + nbits
                    + " (expected " + packing.id() + ")");
        }
        Entry shapeEntry = require(lookup, pre + "shape");
        if (!shapeEntry.dtype().equals("I64") || shapeEntry.data().length % 8 != 0) {
            throw new QuantFormatException(pre + "shape: dtype " + shapeEntry.dtype() + ", expected I64");
        }
        long[] shape = new long[shapeEntry.data().length / 8];
        le(shapeEntry.data()).asLongBuffer().get(shape);
        long n = Shapes.numel(shape);
        if (n == 0 || n % groupSize != 0) {
            throw new QuantFormatException(pre + "shape: " + Arrays.toString(shape) + " holds " + n
                    + " elements, not a positive multiple of group_size " + groupSize);
        }
        long groups = n / groupSize;
        long rows = axis == 0 ? groupSize : groups;
        long cols = n / rows;
        if (packing != HqqPacking.THREE_BIT && rows % packing.codesPerWord() != 0) {
            throw new QuantFormatException(pre + "shape: " + Arrays.toString(shape) + " in groups of " + groupSize
                    + " along axis " + axis + " gives " + rows + " grouped rows, which " + packing.id()
                    + " cannot pack (a multiple of " + packing.codesPerWord() + " expected)");
        }
        Entry codes = require(lookup, pre + CODES);
        String codeType = packing.int32Words() ? "I32" : "U8";
        long[] packedShape = {packing.packedRows(rows), cols};
        if (!codes.dtype().equals(codeType) || !Arrays.equals(codes.shape(), packedShape)) {
            throw new QuantFormatException(pre + CODES + ": " + codes.dtype() + " " + Arrays.toString(codes.shape())
                    + ", expected " + codeType + " " + Arrays.toString(packedShape) + " for " + nbits + "-bit shape "
                    + Arrays.toString(shape) + " in groups of " + groupSize + " along axis " + axis);
        }
        long[] metaShape = axis == 0 ? new long[] {1, groups} : new long[] {groups, 1};
        float[] scale = floats(require(lookup, pre + "scale"), metaShape);
        float[] zero = floats(require(lookup, pre + "zero"), metaShape);
        return new HqqTensor(params, shape, codes.data(), scale, zero);
    }

    /**
     * The {@code quantization_config} of config.json as transformers' {@code HqqConfig.to_dict()} writes it (keys
     * sorted, as {@code json.dumps(sort_keys=True)}): the base quant config of {@code params} and
     * {@code skip_modules: ["lm_head"]}.
     */
    public static ObjectNode quantizationConfig(HqqParams params) {
        ObjectMapper json = new ObjectMapper();
        ObjectNode weight = json.createObjectNode();
        weight.put("axis", params.axis());
        weight.put("channel_wise", true);
        weight.put("group_size", params.groupSize());
        weight.put("nbits", params.nbits());
        weight.put("optimize", params.optimize());
        weight.put("round_zero", params.roundZero());
        weight.put("view_as_float", false);
        ObjectNode quant = json.createObjectNode();
        quant.put("offload_meta", false);
        quant.putNull("scale_quant_params");
        quant.set("weight_quant_params", weight);
        quant.putNull("zero_quant_params");
        ObjectNode config = json.createObjectNode();
        config.set("quant_config", quant);
        config.put("quant_method", "hqq");
        config.putArray("skip_modules").add("lm_head");
        return config;
    }

    /**
     * The parameters a {@code quantization_config} of {@code quant_method: hqq} gives for every layer, or null when
     * the config is another method's.
     *
     * @throws IllegalArgumentException naming the field when it is not a single base config qlora4j can use
     */
    public static HqqParams fromQuantizationConfig(JsonNode config) {
        if (!"hqq".equals(config.path("quant_method").asText())) {
            return null;
        }
        JsonNode weight = config.path("quant_config").path("weight_quant_params");
        if (!weight.isObject()) {
            throw new IllegalArgumentException("quant_config.weight_quant_params is missing; per-layer HQQ configs"
                    + " (dynamic_config) are not implemented");
        }
        if (weight.path("view_as_float").asBoolean(false) || !weight.path("channel_wise").asBoolean(true)) {
            throw new IllegalArgumentException("quant_config.weight_quant_params: view_as_float true or channel_wise"
                    + " false is not implemented");
        }
        if (!weight.path("nbits").canConvertToExactIntegral()) {
            throw new IllegalArgumentException("quant_config.weight_quant_params.nbits "
                    + weight.path("nbits").asText() + " is not implemented (expected one of " + HqqParams.BITS + ")");
        }
        int nbits = weight.path("nbits").asInt();
        return new HqqParams(nbits, weight.path("group_size").asInt(HqqParams.DEFAULT_GROUP_SIZE),
                weight.path("axis").asInt(1), weight.path("optimize").asBoolean(true),
                weight.path("round_zero").asBoolean(nbits == 4));
    }

    private static Entry require(Function<String, Entry> lookup, String key) throws QuantFormatException {
        Entry e = lookup.apply(key);
        if (e == null) {
            throw new QuantFormatException(key + ": missing (an HQQ module needs it)");
        }
        return e;
    }

    private static int integer(Function<String, Entry> lookup, String key) throws QuantFormatException {
        Entry e = require(lookup, key);
        if (e.dtype().equals("I32") && e.data().length == 4) {
            return le(e.data()).getInt();
        }
        if (e.dtype().equals("I64") && e.data().length == 8) {
            return Math.toIntExact(le(e.data()).getLong());
        }
        throw new QuantFormatException(key + ": " + e.dtype() + " " + Arrays.toString(e.shape())
                + ", expected an I32 scalar");
    }

    private static boolean flag(Function<String, Entry> lookup, String key, boolean absent) throws QuantFormatException {
        Entry e = lookup.apply(key);
        if (e == null) {
            return absent;
        }
        if (!(e.dtype().equals("U8") || e.dtype().equals("BOOL")) || e.data().length != 1) {
            throw new QuantFormatException(key + ": " + e.dtype() + " " + Arrays.toString(e.shape())
                    + ", expected a U8 scalar 0 or 1");
        }
        return e.data()[0] != 0;
    }

    private static String text(Function<String, Entry> lookup, String key) throws QuantFormatException {
        Entry e = require(lookup, key);
        if (!e.dtype().equals("U8")) {
            throw new QuantFormatException(key + ": dtype " + e.dtype() + ", expected U8 (ASCII text)");
        }
        return new String(e.data(), StandardCharsets.US_ASCII);
    }

    private static float[] floats(Entry e, long[] shape) throws QuantFormatException {
        if (!Arrays.equals(e.shape(), shape)) {
            throw new QuantFormatException(e.key() + ": shape " + Arrays.toString(e.shape()) + ", expected "
                    + Arrays.toString(shape));
        }
        ByteBuffer b = le(e.data());
        float[] out = new float[Math.toIntExact(shape[0] * shape[1])];
        switch (e.dtype()) {
            case "F32" -> b.asFloatBuffer().get(out);
            case "F16" -> {
                for (int i = 0; i < out.length; i++) {
                    out[i] = HalfFloats.f16ToFloat(b.getShort());
                }
            }
            case "BF16" -> {
                for (int i = 0; i < out.length; i++) {
                    out[i] = HalfFloats.bf16ToFloat(b.getShort());
                }
            }
            default -> throw new QuantFormatException(e.key() + ": dtype " + e.dtype() + ", expected F32, F16 or BF16");
        }
        QuantFormatException.requireFinite(e.key(), out);
        return out;
    }

    private static Entry int32(String key, int value) {
        return new Entry(key, "I32", new long[0], le(4).putInt(value).array());
    }

    private static Entry flag(String key, boolean value) {
        return new Entry(key, "U8", new long[0], new byte[] {(byte) (value ? 1 : 0)});
    }

    private static Entry ascii(String key, String value) {
        byte[] bytes = value.getBytes(StandardCharsets.US_ASCII);
        return new Entry(key, "U8", new long[] {bytes.length}, bytes);
    }

    private static byte[] floatBytes(float[] values) {
        ByteBuffer b = le(4 * values.length);
        b.asFloatBuffer().put(values);
        return b.array();
    }

    private static ByteBuffer le(int size) {
        return ByteBuffer.allocate(size).order(ByteOrder.LITTLE_ENDIAN);
    }

    private static ByteBuffer le(byte[] data) {
        return ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN);
    }
}
