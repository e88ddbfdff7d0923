package io.qlora4j.quant;

import java.util.Arrays;

/** Element counts of row-major tensor shapes, shared by the quantized tensor types. */
public final class Shapes {
    private Shapes() {}

    /**
     * The product of {@code shape}.
     *
     * @throws IllegalArgumentException for a negative dimension
     * @throws ArithmeticException when the count overflows a long
     */
    public static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("negative dimension in shape " + Arrays.toString(shape));
            }
            n = Math.multiplyExact(n, d);
        }
        return n;
    }
}
