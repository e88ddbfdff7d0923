package io.qlora4j.quant.hqq;

import io.qlora4j.quant.BlockParallel;
import java.util.Arrays;

/**
 * HQQ's default zero-point solver, {@code optimize_weights_proximal_legacy} of hqq 0.2.7 and later (0.2.8.post1
 * read), on its CPU float32 path: a half-quadratic splitting that holds the scales fixed and, for at most 20
 * iterations, codes the weights with the current zero points, shrinks the reconstruction error with the
 * generalized soft-threshold of the l_p norm (p = 0.7, beta = 10), and moves each zero point to the mean over its
 * group of {@code code - (w - shrunk error) * scale}. It stops at the first iteration whose mean absolute
 * reconstruction error over the whole tensor is not below the best so far, keeping the zero points that
 * iteration computed. hqq up to 0.2.6 also multiplied beta by kappa = 1.01 per iteration; 0.2.7 dropped that
 * (kappa stays in its parameters unused), and so does this. On CUDA HQQ runs the solver in float16; this is the
 * float32 CPU path.
 *
 * <p>Every operation rounds to float32 as torch does element by element (Java never fuses a multiply and an add).
 * The group means are summed in ATen's order ({@link AtenSum}), so zero points match upstream bit for bit. The
 * mean error, which only decides when to stop, is summed in ATen's order for tensors under 32768 elements (where
 * torch reduces on one thread whatever its thread count) and in double precision above (where torch splits the
 * sum over its threads, so its last bit depends on their number). {@code |x|^-0.3} is {@link Math#pow}, which may
 * differ by an ulp from torch's vectorized {@code powf}; it only matters where an error exceeds about 0.17.
 */
final class ProximalSolver {
    static final int ITERATIONS = 20;
    static final float LP_NORM = 0.7f;
    static final float BETA = 10f;
    /** The exponent {@code lp_norm - 1} as torch casts it to float32. */
    private static final double EXPONENT = (float) (0.7 - 1);
    /** {@code 1 / beta} as torch multiplies by it in float32. */
    private static final float INVERSE_BETA = (float) (1.0 / 10.0);
    /**
     * Below this magnitude {@code |x| - |x|^-0.3 / beta} is negative by far more than float32 rounding (the
     * threshold is 0.1701), so the shrunk error is zero without computing the power.
     */
    private static final float SHRINK_FREE = 0.16f;
    /** torch's {@code GRAIN_SIZE}: a reduction over fewer elements always runs on one thread. */
    static final int SERIAL_REDUCTION = 32768;
    /** Groups per unit of parallel work along axis 0: columns, a multiple of ATen's block of 32. */
    private static final int COLUMN_BLOCK = 256;
    /** Groups per unit of parallel work along axis 1: rows. */
    private static final int ROW_BLOCK = 32;

    private ProximalSolver() {}

    /**
     * Refines {@code zero} in place for the grouped matrix {@code w} ({@code [rows, cols]} row-major, groups along
     * {@code axis}) with quantization scales {@code scale} (the multipliers, before HQQ inverts them).
     *
     * <p>A group whose zero point comes out of a step exactly as it went in has reached a fixed point: the next step
     * codes it the same and computes the same zero and errors again, and so does every later one. Such a group is
     * settled and skipped from then on, its errors kept as last computed; upstream recomputes it to the same bits.
     */
    static void solve(float[] w, int rows, int cols, int axis, float[] scale, float[] zero, int maxCode, int threads) {
        int n = w.length;
        int groups = zero.length;
        Work work = new Work(w, rows, cols, axis, scale, zero, maxCode, n < SERIAL_REDUCTION ? new float[n] : null);
        int perBlock = axis == 0 ? COLUMN_BLOCK : ROW_BLOCK;
        int blocks = (groups + perBlock - 1) / perBlock;
        int blockElements = perBlock * (axis == 0 ? rows : cols);
        float best = Float.POSITIVE_INFINITY;
        for (int it = 0; it < ITERATIONS; it++) {
            BlockParallel.forEachRange(blocks, blockElements, threads, (from, to) -> {
                Scratch scratch = new Scratch(Math.max(rows, cols <= COLUMN_BLOCK ? cols : COLUMN_BLOCK));
                for (int b = from; b < to; b++) {
                    int g0 = b * perBlock;
                    int g1 = Math.min(groups, g0 + perBlock);
                    if (axis == 0) {
                        work.columns(g0, g1, scratch);
                    } else {
                        work.rows(g0, g1, scratch);
                    }
                }
            });
            float error = work.meanError();
            for (int g = 0; g < groups; g++) {
                work.settled[g] |= Float.floatToRawIntBits(work.next[g]) == Float.floatToRawIntBits(zero[g]);
            }
            System.arraycopy(work.next, 0, zero, 0, groups);
            if (error < best) {
                best = error;
            } else {
                break;
            }
        }
    }

    /** The state of one solve: the weights, the current and next zero points, the errors, the settled groups. */
    private static final class Work {
        final float[] w;
        final int rows;
        final int cols;
        final int axis;
        final float[] scale;
        final float[] zero;
        final float max;
        /** Per element {@code |w - w_r|}, for tensors whose mean error is summed in ATen's order; else null. */
        final float[] magnitudes;
        /** Per group, the summed {@code |w - w_r|} of its last step (when {@code magnitudes} is null). */
        final double[] groupErrors;
        final float[] next;
        final boolean[] settled;

        Work(float[] w, int rows, int cols, int axis, float[] scale, float[] zero, int maxCode, float[] magnitudes) {
            this.w = w;
            this.rows = rows;
            this.cols = cols;
            this.axis = axis;
            this.scale = scale;
            this.zero = zero;
            this.max = maxCode;
            this.magnitudes = magnitudes;
            this.groupErrors = new double[zero.length];
            this.next = zero.clone();
            this.settled = new boolean[zero.length];
        }

        /** The mean of {@code |w - w_r|} over the tensor. */
        float meanError() {
            int n = w.length;
            if (magnitudes != null) {
                return AtenSum.inner(magnitudes, 0, n) / (float) n;
            }
            double total = 0;
            for (double e : groupErrors) {
                total += e;
            }
            return (float) total / (float) n;
        }

        /** Steps the unsettled groups (columns) among {@code [c0, c1)} along axis 0. */
        void columns(int c0, int c1, Scratch scratch) {
            int cascaded = Math.min(c1, AtenSum.cascadeColumns(cols));
            int count = 0;
            for (int c = c0; c < cascaded; c++) {
                if (!settled[c]) {
                    scratch.active[count++] = c;
                }
            }
            if (count > 0) {
                float[] sums = magnitudes == null ? cascadeFast(scratch, count) : null;
                if (sums == null) {
                    sums = cascadeExact(scratch, count);
                }
                for (int j = 0; j < count; j++) {
                    next[scratch.active[j]] = sums[j] / (float) rows;
                }
            }
            for (int c = Math.max(c0, cascaded); c < c1; c++) {
                if (!settled[c]) {
                    stepGroup(c, c, cols, rows, scratch);
                    float sum = cols == 1 ? AtenSum.inner(scratch.t, 0, rows) : AtenSum.ilp(scratch.t, 0, 1, rows);
                    next[c] = sum / (float) rows;
                }
            }
        }

        /** Steps the unsettled groups (rows) among {@code [r0, r1)} along axis 1. */
        void rows(int r0, int r1, Scratch scratch) {
            for (int r = r0; r < r1; r++) {
                if (!settled[r]) {
                    stepGroup(r, r * cols, 1, cols, scratch);
                    next[r] = AtenSum.inner(scratch.t, 0, cols) / (float) cols;
                }
            }
        }

        /**
         * Steps group {@code g}, elements {@code first + i * stride} for {@code i < count}: their {@code t} into
         * {@code scratch.t}, their summed errors into {@link #groupErrors}.
         */
        private void stepGroup(int g, int first, int stride, int count, Scratch scratch) {
            double error = 0;
            for (int i = 0; i < count; i++) {
                error += scratch.step.of(this, first + i * stride, g);
                scratch.t[i] = scratch.step.t;
            }
            groupErrors[g] = error;
        }

        /**
         * The column sums of {@code t} over the {@code count} columns {@code scratch.active} when no element's error
         * is large enough to shrink (the shrunk error is then zero and {@code t = code - w * scale}), without a
         * division per element: each error is taken in code units, {@code |w * scale + zero - code|}, summed per
         * column and divided by the column's scale once (a rounding away from {@code |w - (code - zero) / scale|},
         * which only feeds the double-precision stop test of large tensors). Null when some element's error may be
         * large enough to shrink, for {@link #cascadeExact} to redo the columns.
         */
        private float[] cascadeFast(Scratch scratch, int count) {
            int[] active = scratch.active;
            float[] units = scratch.units;
            float[] limit = scratch.limit;
            for (int j = 0; j < count; j++) {
                units[j] = 0f;
                limit[j] = SHRINK_FREE * scale[active[j]];
            }
            boolean large = false;
            AtenSum.Cascade sums = new AtenSum.Cascade(count, rows);
            for (int r = 0; r < rows; r++) {
                float[] acc = sums.first();
                int base = r * cols;
                for (int j = 0; j < count; j++) {
                    int c = active[j];
                    float xs = w[base + c] * scale[c];
                    float v = xs + zero[c];
                    float q = code(v, max);
                    float off = Math.abs(v - q);
                    acc[j] += q - xs;
                    units[j] += off;
                    large |= off > limit[j];
                }
                sums.rowDone();
            }
            if (large) {
                return null;
            }
            for (int j = 0; j < count; j++) {
                groupErrors[active[j]] = (double) units[j] / scale[active[j]];
            }
            return sums.finish();
        }

        /** The column sums of {@code t} over the {@code count} columns {@code scratch.active}, shrinking as needed. */
        private float[] cascadeExact(Scratch scratch, int count) {
            int[] active = scratch.active;
            double[] errors = new double[count];
            Step step = scratch.step;
            AtenSum.Cascade sums = new AtenSum.Cascade(count, rows);
            for (int r = 0; r < rows; r++) {
                float[] acc = sums.first();
                for (int j = 0; j < count; j++) {
                    errors[j] += step.of(this, r * cols + active[j], active[j]);
                    acc[j] += step.t;
                }
                sums.rowDone();
            }
            for (int j = 0; j < count; j++) {
                groupErrors[active[j]] = errors[j];
            }
            return sums.finish();
        }
    }

    /** One element's solver step, its results held in fields. */
    private static final class Step {
        /** {@code code - (w - shrink(w - w_r)) * scale}. */
        float t;

        /**
         * Steps element {@code i} of group {@code g}: sets {@link #t}, records {@code |w - w_r|} in the magnitudes
         * when they are kept, and returns it.
         */
        float of(Work work, int i, int g) {
            float s = work.scale[g];
            float z = work.zero[g];
            float x = work.w[i];
            float q = code(x * s + z, work.max);
            float d = x - (q - z) / s;
            float m = Math.abs(d);
            t = m > SHRINK_FREE ? q - (x - shrink(d, m)) * s : q - x * s;
            if (work.magnitudes != null) {
                work.magnitudes[i] = m;
            }
            return m;
        }
    }

    /** Per-thread work arrays. */
    private static final class Scratch {
        final int[] active = new int[COLUMN_BLOCK];
        final float[] units = new float[COLUMN_BLOCK];
        final float[] limit = new float[COLUMN_BLOCK];
        final float[] t;
        final Step step = new Step();

        Scratch(int length) {
            this.t = new float[length];
        }
    }

    /**
     * {@code clamp(round(v), 0, max)} with round half to even, as {@code torch.round(...).clamp(0, max)}: below
     * 2^23, adding 2^23 leaves no fraction bits, so the float addition rounds half to even (a negative {@code v} may
     * come out as -0.5 rather than an integer, which clamps to 0 all the same, and from 2^23 on the result clamps to
     * {@code max}).
     */
    static float code(float v, float max) {
        float rounded = (v + 0x1p23f) - 0x1p23f;
        return rounded < 0f ? 0f : (rounded > max ? max : rounded);
    }

    /** {@code sign(d) * max(|d| - |d|^(p-1) / beta, 0)} in float32, as HQQ's {@code shrink_lp_op}. */
    static float shrink(float d, float magnitude) {
        float shrunk = magnitude - INVERSE_BETA * (float) Math.pow(magnitude, EXPONENT);
        if (!(shrunk > 0f)) {
            return 0f;
        }
        return d < 0f ? -shrunk : shrunk;
    }
}
