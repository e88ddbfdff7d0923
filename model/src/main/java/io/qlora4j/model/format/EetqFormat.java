package io.qlora4j.model.format;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.quant.BlockParallel;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.HalfFloats;
import io.qlora4j.quant.int8.NdLlmInt8Tensor;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * EETQ ({@code quantization_method: eetq}, {@code quantization_bit: 8}): per-output-channel symmetric int8 weights,
 * quantized on the fly as LLaMA-Factory does ({@code EetqConfig()}), with the numerics of EETQ's
 * {@code symmetric_quantize} (INT8_WEIGHT_ONLY), for each output row {@code r} of the weight {@code [out, in]}:
 * <ol>
 *   <li>the weight is rounded to float16 (ties to even): EETQ's {@code quantize_and_preprocess_weights} takes
 *       float16 weights only, and computes in float16;</li>
 *   <li>{@code m = f32(max |w16[r, :]|) * f32(1/128)} (128, not 127; exact in float32);</li>
 *   <li>the stored scale is {@code float16(m)}: exact, unless {@code m} is below float16's smallest normal
 *       {@code 2^-14} (an absmax under {@code 2^-7}), where it rounds to a subnormal, ties to even;</li>
 *   <li>{@code q = int8(max(-128, min(127, round(f32(w16) / m))))}: an IEEE float32 division by the unrounded
 *       {@code m}, C's {@code round} (half away from zero), so {@code +absmax} codes 128 and clamps to 127 while
 *       {@code -absmax} codes -128. An all-zero row divides 0 by 0; NaN passes {@code std::min(127, NaN)} as 127,
 *       so its codes are 127 over a zero scale.</li>
 * </ol>
 * The weight is {@code q * scale}: EETQ's kernels multiply {@code half(q) * scale} in float16, which is the exact
 * product rounded once; qlora4j forms the exact product in float32 and rounds it once to the compute dtype
 * ({@link NdLlmInt8Tensor} with the float16 scales as row factors), so float16 compute is EETQ's weight bit for bit
 * and float32 compute its exact value. A value beyond float16's range (|w| of 65520 or more) is refused: EETQ's scale
 * would be infinite.
 *
 * <p>Checkpoints: EETQ saves its weight pre-processed for the GPU architecture that quantized it (transposed to
 * {@code [in, out]}, rows permuted and interleaved in the tile layout of sm75 to sm89, or of sm70; every byte offset
 * by 128), and its config.json does not record which; EETQ itself refuses sm90 and later. qlora4j neither writes nor
 * reads such checkpoints ({@link #REFUSAL}): {@code quantize} and {@code export} to EETQ are refused, and so is a
 * checkpoint whose {@code quantization_config} says {@code quant_method: eetq}. Training over EETQ, {@code eval},
 * {@code generate} and merging an adapter trained over it into the dequantized base work from the float checkpoint.
 */
public record EetqFormat() implements BaseFormat {
    /** Why qlora4j neither writes nor reads EETQ checkpoints. */
    static final String REFUSAL = "EETQ checkpoints are not implemented: EETQ saves its int8 weight in the tile layout"
            + " of the GPU architecture that quantized it (sm70, or sm75 to sm89), which config.json does not record;"
            + " qlora4j quantizes to EETQ on the fly from a float checkpoint (train, eval, generate)";

    /** The registration: {@code eetq} at 8 bits, quantized on the fly only. */
    public static final FormatRegistration REGISTRATION = new FormatRegistration("EETQ", List.of("eetq"), List.of(8),
            List.of(), keys -> new EetqFormat(), EetqFormat::fromConfig, REFUSAL);

    /** Refuses {@code quant_method: eetq}; any other config is not EETQ's. */
    private static EetqFormat fromConfig(JsonNode config) {
        if ("eetq".equalsIgnoreCase(config.path("quant_method").asText())) {
            throw new IllegalArgumentException("quant_method eetq: " + REFUSAL);
        }
        return null;
    }

    @Override
    public String method() {
        return "eetq";
    }

    @Override
    public int bits() {
        return 8;
    }

    /** {@code EETQ int8, per output channel, float16 scales}. */
    @Override
    public String describe() {
        return "EETQ int8, per output channel, float16 scales";
    }

    @Override
    public Map<String, Object> keys() {
        Map<String, Object> keys = new LinkedHashMap<>();
        keys.put(FormatKeys.METHOD, method());
        keys.put(FormatKeys.BITS, bits());
        return keys;
    }

    /** False: qlora4j reads no EETQ entries. */
    @Override
    public boolean isStored(SafetensorsReader reader, String prefix) {
        return false;
    }

    @Override
    public List<String> storedKeys(SafetensorsReader reader, String prefix) {
        return List.of(prefix + ".weight", prefix + ".weight_scales");
    }

    /** Refused: see {@link #REFUSAL}. */
    @Override
    public StoredWeight read(SafetensorsReader reader, String prefix) throws ModelException {
        throw new ModelException(prefix + ": " + REFUSAL);
    }

    /** Whole rows at a time, on every core, straight from {@code source}. */
    @Override
    public StoredWeight quantize(FloatSource<ModelException> source, long[] shape) throws ModelException {
        if (shape.length != 2 || shape[0] <= 0 || shape[1] <= 0 || shape[0] * shape[1] > Integer.MAX_VALUE - 8) {
            throw new ModelException("EETQ: a weight is [out, in] of at most 2^31 elements, got "
                    + Arrays.toString(shape));
        }
        int rows = Math.toIntExact(shape[0]);
        int in = Math.toIntExact(shape[1]);
        byte[] codes = new byte[rows * in];
        short[] scales = new short[rows];
        BlockParallel.forEachRows(source, rows, in, (buffer, first, n) -> {
            for (int i = 0; i < n; i++) {
                scales[first + i] = quantizeRow(buffer, i * in, in, codes, (first + i) * in, first + i);
            }
        });
        return new Weight(codes, scales, shape.clone());
    }

    /** Codes {@code values[from, from + in)} into {@code codes[to, to + in)}; returns the row's float16 scale. */
    private static short quantizeRow(float[] values, int from, int in, byte[] codes, int to, int row)
            throws ModelException {
        float absmax = HalfFloats.roundRowToF16(values, from, in);
        if (!Float.isFinite(absmax)) {
            throw new ModelException("EETQ: row " + row + " holds a value beyond float16's range (|w| >= 65520) or"
                    + " NaN; EETQ scales each output channel by its float16 absmax");
        }
        float m = absmax * (1f / 128);
        for (int i = 0; i < in; i++) {
            codes[to + i] = m == 0 ? 127 : code(values[from + i] / m);
        }
        return HalfFloats.floatToF16(m);
    }

    /** C's {@code round} (half away from zero, exact in double for a float) clamped to [-128, 127]. */
    private static byte code(float scaled) {
        double rounded = Math.copySign(Math.floor(Math.abs((double) scaled) + 0.5), scaled);
        return (byte) Math.max(-128, Math.min(127, rounded));
    }

    /** transformers' {@code EetqConfig().to_dict()}. */
    @Override
    public ObjectNode quantizationConfig(String torchDtype) {
        ObjectNode q = new ObjectMapper().createObjectNode();
        q.putNull("modules_to_not_convert");
        q.put("quant_method", "eetq");
        q.put("weights", "int8");
        return q;
    }

    /** One byte per code plus a float16 scale per output channel. */
    @Override
    public long storedBytes(long[] shape) {
        return shape[0] * shape[1] + 2 * shape[0];
    }

    /** On the device ({@code NdLlmInt8Tensor}) the codes and a float32 scale per output channel. */
    @Override
    public long deviceBytes(long[] shape) {
        return shape[0] * shape[1] + 4 * shape[0];
    }

    @Override
    public String toString() {
        return describe();
    }

    /** One EETQ weight: int8 codes {@code [out, in]} row-major and a float16 scale (bits) per output row. */
    record Weight(byte[] codes, short[] scales, long[] shape) implements StoredWeight {
        @Override
        public long[] shape() {
            return shape.clone();
        }

        @Override
        public long bytes() {
            return codes.length + 2L * scales.length;
        }

        /** {@code q * scale}, exact in float32. */
        @Override
        public float[] dequantize() {
            float[] factors = factors();
            int in = Math.toIntExact(shape[1]);
            float[] w = new float[codes.length];
            for (int i = 0; i < w.length; i++) {
                w[i] = codes[i] * factors[i / in];
            }
            return w;
        }

        /** The float16 scales as float32. */
        private float[] factors() {
            float[] f = new float[scales.length];
            for (int r = 0; r < f.length; r++) {
                f[r] = HalfFloats.f16ToFloat(scales[r]);
            }
            return f;
        }

        /** Refused: see {@link EetqFormat#REFUSAL}. */
        @Override
        public void write(SafetensorsWriter writer, String prefix, String torchDtype) throws ModelException {
            throw new ModelException(REFUSAL);
        }

        @Override
        public BaseLinear upload(NDArray bias, NDManager manager) {
            return new QuantizedLinear(NdLlmInt8Tensor.upload(codes, factors(), shape, manager), bias);
        }
    }
}
