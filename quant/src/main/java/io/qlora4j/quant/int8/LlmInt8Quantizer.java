package io.qlora4j.quant.int8;

import io.qlora4j.quant.BlockParallel;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.HalfFloats;
import java.util.Arrays;

/**
 * Quantizes a weight {@code [out, in]} to LLM.int8 byte for byte as bitsandbytes' {@code int8_vectorwise_quant}
 * does when transformers loads a model with {@code load_in_8bit} ({@code Int8Params._quantize}, threshold 0):
 * <ol>
 *   <li>the weight is cast to float16, rounding to nearest even ({@code W.to(float16)});</li>
 *   <li>{@code SCB[r] = max |w16[r, :]|}, a float16 value held as float32;</li>
 *   <li>{@code CB[r, c] = rint(f32(w16[r, c]) * f32(f32(1 / SCB[r]) * 127))}, rounding half to even: the float32
 *       operation order of bitsandbytes' CPU path ({@code torch.round(B * (127.0 / SCB))}, where
 *       {@code 127.0 / t} is {@code t.reciprocal() * 127}); its CUDA kernel computes {@code 127 / SCB} with a fast
 *       approximate division that may differ by an ulp, which can move a code that lies exactly on a .5 boundary.</li>
 * </ol>
 * So the row {@code [3, 1.5]} codes to {@code [127, 64]}: {@code 1.5 * 42.333336 = 63.500004}. An all-zero row has
 * {@code SCB = 0}; bitsandbytes then computes {@code 0 * inf = NaN}, whose int8 conversion is undefined, and
 * qlora4j stores code 0 (the row dequantizes to zero either way). A value beyond float16's range (|w| of 65520 or
 * more) would make {@code SCB} infinite and the row meaningless, so it is refused.
 */
public final class LlmInt8Quantizer {
    private LlmInt8Quantizer() {}

    /**
     * Quantizes the {@code out * in} row-major values of {@code source}, a chunk of whole rows at a time on every
     * core, so no float array of the whole weight exists.
     *
     * @throws E what a read of {@code source} threw
     * @throws IllegalArgumentException for a shape that is not {@code [out, in]} or a value beyond float16's range
     */
    public static <E extends Exception> LlmInt8Tensor quantize(FloatSource<E> source, long[] shape) throws E {
        if (shape.length != 2 || shape[0] * shape[1] > Integer.MAX_VALUE - 8) {
            throw new IllegalArgumentException("an LLM.int8 weight is [out, in] of at most 2^31 elements, got "
                    + Arrays.toString(shape));
        }
        int rows = Math.toIntExact(shape[0]);
        int in = Math.toIntExact(shape[1]);
        byte[] codes = new byte[rows * in];
        float[] scb = new float[rows];
        BlockParallel.forEachRows(source, rows, in, (buffer, first, n) -> {
            for (int i = 0; i < n; i++) {
                quantizeRow(buffer, i * in, in, codes, first + i, scb);
            }
        });
        return new LlmInt8Tensor(codes, scb, shape);
    }

    /** Codes one row, {@code values[from, from + in)}, as row {@code row}. */
    private static void quantizeRow(float[] values, int from, int in, byte[] codes, int row, float[] scb) {
        float absmax = HalfFloats.roundRowToF16(values, from, in);
        if (!Float.isFinite(absmax)) {
            throw new IllegalArgumentException("row " + row + " holds a value beyond float16's range (|w| >= 65520)"
                    + " or NaN; LLM.int8 scales rows by their float16 absmax");
        }
        scb[row] = absmax;
        int out = row * in - from;
        if (absmax == 0) {
            return; // codes stay 0
        }
        float scale = (1f / absmax) * 127f;
        for (int i = from; i < from + in; i++) {
            codes[out + i] = (byte) Math.rint(values[i] * scale);
        }
    }
}
