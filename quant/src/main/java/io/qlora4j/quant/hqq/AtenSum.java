package io.qlora4j.quant.hqq;

/**
 * float32 sums added in the order of libtorch's CPU reduction ({@code cascade_sum} in ATen's SumKernel.cpp, AVX2
 * vectors of 8 floats, one thread), so that a mean HQQ takes over a group comes out bit for bit as upstream's.
 * ATen adds in chunks ({@code multi_row_sum}): each of several accumulator slots sums a run of 16 (or more) rows
 * from zero, chunk sums are added into a second level, and so on up to four levels, which are added together at
 * the end. Three uses of it matter here:
 * <ul>
 *   <li>{@link #inner}: a contiguous run (a group along axis 1, a single-column group along axis 0, a whole
 *       tensor): 32 slots (4 vectors for instruction-level parallelism x 8 lanes), leftover vectors into the first,
 *       the four vectors added lane by lane, then the leftover scalars and the 8 lanes in order;</li>
 *   <li>{@link Cascade} over columns: a column of a {@code [rows, cols]} matrix reduced over rows, one slot per
 *       column, which ATen uses for the columns in whole blocks of 32 (of 4 when there are fewer than 8 columns);</li>
 *   <li>{@link #ilp}: a strided run with 4 slots (elements {@code 4i + k}), used for the remaining columns.</li>
 * </ul>
 */
final class AtenSum {
    /** Floats per AVX2 vector. */
    static final int LANES = 8;
    /** ATen's instruction-level parallelism factor in {@code row_sum}. */
    private static final int ILP = 4;
    private static final int LEVELS = 4;

    private AtenSum() {}

    /**
     * The accumulators of {@code multi_row_sum} for {@code width} slots over {@code size} rows: add row {@code i}'s
     * values into {@link #first()}, call {@link #rowDone()}, and read {@link #finish()} once all rows are in.
     */
    static final class Cascade {
        private final float[][] acc;
        private final int power;
        private final long mask;
        private long rows;

        Cascade(int width, long size) {
            this.acc = new float[LEVELS][width];
            this.power = Math.max(4, ceilLog2(size) / LEVELS);
            this.mask = (1L << power) - 1;
        }

        /** The first level, into which each row's values are added. */
        float[] first() {
            return acc[0];
        }

        /** Ends a row: after every whole chunk of {@code 2^power} rows its sums move up the levels. */
        void rowDone() {
            rows++;
            if ((rows & mask) != 0) {
                return;
            }
            int width = acc[0].length;
            for (int j = 1; j < LEVELS; j++) {
                float[] up = acc[j];
                float[] down = acc[j - 1];
                for (int k = 0; k < width; k++) {
                    up[k] += down[k];
                    down[k] = 0f;
                }
                if ((rows & (mask << (j * power))) != 0) {
                    break;
                }
            }
        }

        /** The sum of each slot: the first level plus the higher ones, in order. */
        float[] finish() {
            float[] out = acc[0];
            for (int j = 1; j < LEVELS; j++) {
                for (int k = 0; k < out.length; k++) {
                    out[k] += acc[j][k];
                }
            }
            return out;
        }
    }

    /** ATen's {@code row_sum} of {@code n} floats {@code x[from + i * stride]}: 4 slots, then the leftovers. */
    static float ilp(float[] x, int from, int stride, int n) {
        int rows = n / ILP;
        Cascade c = new Cascade(ILP, rows);
        for (int i = 0; i < rows; i++) {
            float[] acc = c.first();
            int base = from + i * ILP * stride;
            for (int k = 0; k < ILP; k++) {
                acc[k] += x[base + k * stride];
            }
            c.rowDone();
        }
        float[] p = c.finish();
        for (int i = rows * ILP; i < n; i++) {
            p[0] += x[from + i * stride];
        }
        for (int k = 1; k < ILP; k++) {
            p[0] += p[k];
        }
        return p[0];
    }

    /** ATen's sum of the contiguous floats {@code x[from, from + n)}: vectorized from 8 elements on. */
    static float inner(float[] x, int from, int n) {
        if (n < LANES) {
            return ilp(x, from, 1, n);
        }
        int vectors = n / LANES;
        int rows = vectors / ILP;
        int width = ILP * LANES;
        Cascade c = new Cascade(width, rows);
        for (int i = 0; i < rows; i++) {
            float[] acc = c.first();
            int base = from + i * width;
            for (int k = 0; k < width; k++) {
                acc[k] += x[base + k];
            }
            c.rowDone();
        }
        float[] p = c.finish();
        for (int v = rows * ILP; v < vectors; v++) {
            for (int lane = 0; lane < LANES; lane++) {
                p[lane] += x[from + v * LANES + lane];
            }
        }
        for (int k = 1; k < ILP; k++) {
            for (int lane = 0; lane < LANES; lane++) {
                p[lane] += p[k * LANES + lane];
            }
        }
        float sum = 0f;
        for (int i = vectors * LANES; i < n; i++) {
            sum += x[from + i];
        }
        for (int lane = 0; lane < LANES; lane++) {
            sum += p[lane];
        }
        return sum;
    }

    /**
     * How many leading columns of a {@code [rows, cols]} matrix ATen sums over rows with one {@link Cascade} slot
     * each (whole blocks of 32 columns, or of 4 below 8 columns; none for a single column, a contiguous run); the
     * rest go through {@link #ilp} ({@link #inner} for a single column).
     */
    static int cascadeColumns(int cols) {
        if (cols == 1) {
            return 0;
        }
        int block = cols < LANES ? ILP : ILP * LANES;
        return cols / block * block;
    }

    /** {@code ceil(log2(x))}, and 1 for {@code x <= 2}, as ATen's {@code CeilLog2}. */
    static int ceilLog2(long x) {
        return x <= 2 ? 1 : 64 - Long.numberOfLeadingZeros(x - 1);
    }
}
