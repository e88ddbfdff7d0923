package io.qlora4j.quant.hqq;

import io.qlora4j.quant.BlockParallel;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.Shapes;
import java.util.Arrays;
import java.util.Objects;

/**
 * Quantizes float32 weights as HQQ's {@code Quantizer.quantize} does on its CPU float32 path (hqq 0.2.8.post1),
 * and as transformers' {@code HQQLinear} keeps them: per group the minimum and maximum, the quantization scale
 * {@code f32(1 / (max - min)) * (2^b - 1)} (1 where {@code |max - min| <= 1e-4}, at most 2e4), the zero point
 * {@code -min * scale} (rounded half to even when {@code roundZero}), refined by HQQ's proximal solver when
 * {@code optimize}; codes {@code clamp(round(w * scale + zero), 0, 2^b - 1)}; the stored scale is
 * {@code 1 / scale}. Built once with {@link #builder(int)}, immutable, safe to share.
 */
public final class HqqQuantizer {
    /** Elements read from a {@link FloatSource} at once. */
    private static final int CHUNK_ELEMENTS = 1 << 16;
    private static final int MAX_ARRAY = Integer.MAX_VALUE - 8;
    /** Groups per unit of parallel work. */
    private static final int BLOCK = 256;

    private final HqqParams params;
    private final int threads;

    private HqqQuantizer(Builder b) {
        this.params = new HqqParams(b.nbits, b.groupSize, b.axis, b.optimize,
                b.roundZero != null ? b.roundZero : b.nbits == 4);
        this.threads = b.threads;
    }

    /**
     * A builder for {@code nbits}-bit codes with LLaMA-Factory's settings ({@link HqqParams#llamaFactory}): groups
     * of 64 along axis 0, the solver on, the zero rounded only at 4 bits, all cores.
     */
    public static Builder builder(int nbits) {
        return new Builder(nbits);
    }

    /** The parameters every tensor is quantized with. */
    public HqqParams params() {
        return params;
    }

    /** Quantizes {@code data} (row-major, {@code product(shape)} elements). */
    public HqqTensor quantize(float[] data, long[] shape) {
        Objects.requireNonNull(data, "data");
        long n = Shapes.numel(Objects.requireNonNull(shape, "shape"));
        if (n != data.length) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds " + n
                    + " elements but the data has " + data.length);
        }
        if (n == 0 || n % params.groupSize() != 0) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds " + n
                    + " elements, not a positive multiple of the HQQ group size " + params.groupSize());
        }
        int groups = (int) (n / params.groupSize());
        int rows = params.axis() == 0 ? params.groupSize() : groups;
        int cols = (int) (n / rows);
        params.packing().checkRows(rows);
        float[] scale = new float[groups];
        float[] zero = new float[groups];
        initialScaleAndZero(data, rows, cols, scale, zero);
        if (params.optimize()) {
            ProximalSolver.solve(data, rows, cols, params.axis(), scale, zero, params.maxCode(), threads);
        }
        byte[] codes = codes(data, rows, cols, scale, zero);
        for (int g = 0; g < groups; g++) {
            scale[g] = 1f / scale[g];
        }
        return new HqqTensor(params, shape.clone(), params.packing().pack(codes, rows, cols), scale, zero);
    }

    /**
     * Quantizes the {@code product(shape)} row-major elements of {@code source}. The solver revisits every element
     * each iteration, so the tensor is read once into a float array (one tensor, never the whole model), in chunks
     * from several threads.
     *
     * @throws E what a read of {@code source} threw
     */
    public <E extends Exception> HqqTensor quantize(FloatSource<E> source, long[] shape) throws E {
        long n = Shapes.numel(Objects.requireNonNull(shape, "shape"));
        if (n > MAX_ARRAY) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds " + n
                    + " elements, more than one Java array can hold");
        }
        float[] data = new float[(int) n];
        int chunks = (int) ((n + CHUNK_ELEMENTS - 1) / CHUNK_ELEMENTS);
        BlockParallel.forEachRange(chunks, CHUNK_ELEMENTS, threads, (from, to) -> {
            for (int c = from; c < to; c++) {
                int first = c * CHUNK_ELEMENTS;
                source.read(first, data, first, (int) Math.min(CHUNK_ELEMENTS, n - first));
            }
        });
        return quantize(data, shape);
    }

    /** Per group: the quantization scale and the zero point before the solver. */
    private void initialScaleAndZero(float[] w, int rows, int cols, float[] scale, float[] zero) {
        float maxCode = params.maxCode();
        boolean byColumn = params.axis() == 0;
        int groups = scale.length;
        int blocks = (groups + BLOCK - 1) / BLOCK;
        BlockParallel.forEachRange(blocks, BLOCK * params.groupSize(), threads, (from, to) -> {
            int g0 = from * BLOCK;
            int g1 = Math.min(groups, to * BLOCK);
            float[] min = new float[g1 - g0];
            float[] max = new float[g1 - g0];
            if (byColumn) {
                // row by row over the block's columns: each column's extremes in one pass over memory
                System.arraycopy(w, g0, min, 0, g1 - g0);
                System.arraycopy(w, g0, max, 0, g1 - g0);
                for (int r = 1; r < rows; r++) {
                    for (int g = g0, at = r * cols + g0; g < g1; g++, at++) {
                        min[g - g0] = Math.min(min[g - g0], w[at]);
                        max[g - g0] = Math.max(max[g - g0], w[at]);
                    }
                }
            } else {
                for (int g = g0; g < g1; g++) {
                    float lo = w[g * cols];
                    float hi = lo;
                    for (int at = g * cols + 1, end = (g + 1) * cols; at < end; at++) {
                        lo = Math.min(lo, w[at]);
                        hi = Math.max(hi, w[at]);
                    }
                    min[g - g0] = lo;
                    max[g - g0] = hi;
                }
            }
            for (int g = g0; g < g1; g++) {
                float lo = min[g - g0];
                float denom = max[g - g0] - lo;
                float s = Math.abs(denom) <= 1e-4f ? 1f : (1f / denom) * maxCode;
                s = Math.min(s, 2e4f);
                float z = -lo * s;
                scale[g] = s;
                zero[g] = params.roundZero() ? (float) Math.rint(z) : z;
            }
        });
    }

    /** The final codes with the solved zero points, one per byte in the grouped matrix's order. */
    private byte[] codes(float[] w, int rows, int cols, float[] scale, float[] zero) {
        byte[] codes = new byte[w.length];
        float max = params.maxCode();
        boolean byColumn = params.axis() == 0;
        BlockParallel.forEachRange(rows, cols, threads, (from, to) -> {
            for (int r = from; r < to; r++) {
                for (int c = 0; c < cols; c++) {
                    int g = byColumn ? c : r;
                    int i = r * cols + c;
                    codes[i] = (byte) ProximalSolver.code(w[i] * scale[g] + zero[g], max);
                }
            }
        });
        return codes;
    }

    @Override
    public String toString() {
        return "HqqQuantizer[" + params + ", threads=" + threads + "]";
    }

    /** Settings for an {@link HqqQuantizer}; every setting but the code width is optional. */
    public static final class Builder {
        private final int nbits;
        private int groupSize = HqqParams.DEFAULT_GROUP_SIZE;
        private int axis;
        private boolean optimize = true;
        private Boolean roundZero;
        private int threads = Runtime.getRuntime().availableProcessors();

        private Builder(int nbits) {
            this.nbits = nbits;
        }

        /** Elements per group, a positive multiple of 8; 64 by default. */
        public Builder optGroupSize(int size) {
            this.groupSize = size;
            return this;
        }

        /** The axis groups run along, 0 (default, LLaMA-Factory's) or 1 (transformers' own default). */
        public Builder optAxis(int value) {
            this.axis = value;
            return this;
        }

        /** Whether the proximal solver refines the zero points; true by default. */
        public Builder optOptimize(boolean value) {
            this.optimize = value;
            return this;
        }

        /** Whether the initial zero point is rounded; by default only at 4 bits, as HQQ's base config. */
        public Builder optRoundZero(boolean value) {
            this.roundZero = value;
            return this;
        }

        /** Threads to split the groups over; all available processors by default. */
        public Builder optThreads(int value) {
            if (value < 1) {
                throw new IllegalArgumentException("threads must be at least 1, got " + value);
            }
            this.threads = value;
            return this;
        }

        /**
         * The immutable quantizer.
         *
         * @throws IllegalArgumentException naming a parameter HQQ does not support
         */
        public HqqQuantizer build() {
            return new HqqQuantizer(this);
        }
    }
}
