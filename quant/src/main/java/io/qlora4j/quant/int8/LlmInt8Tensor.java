package io.qlora4j.quant.int8;

import io.qlora4j.quant.HostTensor;
import java.util.Arrays;
import java.util.Objects;

/**
 * A weight {@code [out, in]} in bitsandbytes' LLM.int8 layout ({@code Int8Params} after quantization, "row" format):
 * int8 codes {@code CB}, row-major, and the float32 absmax of each output row of the float16 weight, {@code SCB}.
 * Arrays are held, not copied; treat them as read-only.
 *
 * @param codes {@code out * in} codes, row-major ({@code weight}, I8 {@code [out, in]} in a state dict)
 * @param scb one absmax per output row ({@code SCB}, F32 {@code [out]}), each a float16 value
 * @param shape {@code [out, in]}
 */
public record LlmInt8Tensor(byte[] codes, float[] scb, long[] shape) implements HostTensor {
    /** {@code 1/127} as a float32, the factor bitsandbytes multiplies {@code SCB} by ({@code SCB * (1.0 / 127.0)}). */
    static final float INV_127 = (float) (1.0 / 127.0);

    /** Checks the sizes against each other. */
    public LlmInt8Tensor {
        Objects.requireNonNull(codes, "codes");
        Objects.requireNonNull(scb, "scb");
        if (shape.length != 2 || shape[0] < 0 || shape[1] < 0) {
            throw new IllegalArgumentException("an LLM.int8 weight is [out, in], got " + Arrays.toString(shape));
        }
        if (scb.length != shape[0]) {
            throw new IllegalArgumentException("SCB has " + scb.length + " entries, expected " + shape[0]
                    + " (one per output row of " + Arrays.toString(shape) + ")");
        }
        if (codes.length != shape[0] * shape[1]) {
            throw new IllegalArgumentException("weight has " + codes.length + " codes, expected " + shape[0] * shape[1]
                    + " for " + Arrays.toString(shape));
        }
        shape = shape.clone();
    }

    /** The shape {@code [out, in]} (a copy). */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /**
     * The per-row dequantization factor {@code SCB * f32(1/127)} in float32, as bitsandbytes computes it for its
     * dequantized weight ({@code SCB.unsqueeze(1).mul(1.0 / 127.0)}).
     */
    public float[] rowScales() {
        float[] s = new float[scb.length];
        for (int r = 0; r < s.length; r++) {
            s[r] = scb[r] * INV_127;
        }
        return s;
    }

    /**
     * The float32 weight, row-major: {@code CB * (SCB * f32(1/127))}, one float32 multiply per element, which is what
     * bitsandbytes' CPU training path ({@code MatMul8bitFp}, 0.47 and later) multiplies by in float32.
     */
    @Override
    public float[] dequantize() {
        int in = Math.toIntExact(shape[1]);
        float[] scales = rowScales();
        float[] w = new float[codes.length];
        for (int i = 0; i < w.length; i++) {
            w[i] = codes[i] * scales[i / in];
        }
        return w;
    }

    /** Stored bytes: one per code plus a float32 {@code SCB} per row. */
    @Override
    public long bytes() {
        return codes.length + 4L * scb.length;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LlmInt8Tensor t && Arrays.equals(codes, t.codes) && Arrays.equals(scb, t.scb)
                && Arrays.equals(shape, t.shape);
    }

    @Override
    public int hashCode() {
        return 31 * (31 * Arrays.hashCode(codes) + Arrays.hashCode(scb)) + Arrays.hashCode(shape);
    }

    @Override
    public String toString() {
        return "LlmInt8Tensor[shape=" + Arrays.toString(shape) + ", " + bytes() + " bytes]";
    }
}
