package io.qlora4j.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.Arrays;
import java.util.Locale;

/** The float32 matmul peak every GFLOP/s figure is divided by: one DJL {@code matMul} of two 2048 x 2048 arrays. */
final class MatmulPeak implements AutoCloseable {
    private static final int N = 2048;
    private final NDArray a;

    /** Creates the float32 operand in {@code manager}. */
    MatmulPeak(NDManager manager) {
        this(manager, DataType.FLOAT32);
    }

    /** Creates the operand in {@code manager} as {@code type} (float16 for a GPU's half-precision peak). */
    MatmulPeak(NDManager manager, DataType type) {
        NDArray normal = manager.randomNormal(new Shape(N, N));
        a = normal.toType(type, false);
        if (a != normal) {
            normal.close();
        }
    }

    /** The peak in {@code type} on {@code manager}'s device: one warm-up product, then the median of {@code runs}. */
    static double medianGflops(NDManager manager, DataType type, int runs) {
        try (MatmulPeak peak = new MatmulPeak(manager, type)) {
            peak.runMs();
            double[] ms = new double[runs];
            Arrays.setAll(ms, i -> peak.runMs());
            return gflops(ForwardBenchmark.median(ms));
        }
    }

    /**
     * Runs one product and returns its wall time in ms, up to one element of the product read back: a GPU runs the
     * product asynchronously, and the read waits for it (measured on an H100 without the read: 620 TFLOP/s in
     * float32, above the chip's dense TF32 peak).
     */
    double runMs() {
        long start = System.nanoTime();
        try (NDArray product = a.matMul(a); NDArray corner = product.get(0, 0)) {
            corner.getFloat();
        }
        return (System.nanoTime() - start) / 1e6;
    }

    /** GFLOP/s of one product that took {@code ms}. */
    static double gflops(double ms) {
        return 2.0 * N * N * N / (ms * 1e6);
    }

    /** One line saying what the peak is. */
    static String describe(double gflops) {
        return String.format(Locale.ROOT, "float32 matmul peak: DJL matMul %d^3 = %.1f GFLOP/s", N, gflops);
    }

    /** Frees the operand. */
    @Override
    public void close() {
        a.close();
    }
}
