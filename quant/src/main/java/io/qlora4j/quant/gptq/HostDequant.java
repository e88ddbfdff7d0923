package io.qlora4j.quant.gptq;

import io.qlora4j.quant.HalfFloats;
import java.util.function.IntBinaryOperator;
import java.util.function.IntUnaryOperator;

/**
 * GPTQ's and AWQ's dequantization in Java, {@code W[o, i] = fp16(scales[g, o] * (q[i, o] - zeros[g, o]))} with
 * {@code g} the group of input {@code i}: the same values as the device's, for merges done on the host.
 */
final class HostDequant {
    private HostDequant() {}

    /** The dense {@code [out, in]} row-major weight from {@code code(i, o)} and {@code group(i)}. */
    static float[] dense(int out, int in, IntBinaryOperator code, IntUnaryOperator group, int[] zeros, float[] scales) {
        float[] w = new float[out * in];
        for (int i = 0; i < in; i++) {
            int g = group.applyAsInt(i);
            for (int o = 0; o < out; o++) {
                float product = scales[g * out + o] * (code.applyAsInt(i, o) - zeros[g * out + o]);
                w[o * in + i] = HalfFloats.roundToF16(product);
            }
        }
        return w;
    }
}
