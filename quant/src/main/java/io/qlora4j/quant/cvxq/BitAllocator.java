package io.qlora4j.quant.cvxq;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * CVXQ's bit allocation: each partition {@code n} gets the depth
 * {@code B_n = round(clamp(1/2 (log2 S_n^2 + log2 G_n^2 - log2 lambda), 0, 8))} (round half to even, as torch's
 * {@code round}), the minimizer of {@code sum_n G_n^2 S_n^2 2^(-2 B_n) + lambda * bits} for the model
 * {@code d_n(B) = G^2 S^2 2^(-2B)} of output distortion. A partition's <em>score</em> is
 * {@code log2 S_n^2 + log2 G_n^2}.
 *
 * <p>{@link #dualAscent} is the reference's {@code Optimizer.optimize}: {@code log2 lambda += lr * (rate - target)}
 * for a number of iterations, {@code rate} being code bits per parameter without side information. The reference
 * stops there, a quarter bit or so from the target; {@link #meetTarget} goes on with a bisection on
 * {@code log2 lambda} on the rate that counts every stored byte (bit planes, per-partition depth, location and
 * scale, row clusters, and whatever fixed bytes each matrix declares, such as its bias), until it is within the
 * tolerance. Where partitions tie at the final threshold (equal scores), they are moved down one bit at a time in
 * matrix and partition order.
 */
public final class BitAllocator {
    /** The reference's dual-ascent step on {@code log2 lambda} per bit of rate error. */
    public static final double ASCENT_RATE = 1.9;
    /** The reference's dual-ascent iterations per call. */
    public static final int ASCENT_ITERATIONS = 10;
    /** The reference's starting {@code log2 lambda}. */
    public static final double INITIAL_LOG2_LAMBDA = -30;

    private static final int BISECTIONS = 200;

    private BitAllocator() {}

    /**
     * One weight matrix as the allocation sees it.
     *
     * @param scores {@code log2 S^2 + log2 G^2} of every partition ({@code -Infinity} allowed: depth 0)
     * @param slots elements stored per partition
     * @param parameters the matrix's parameters (rows x columns)
     * @param fixedBytes bytes stored whatever the depths: {@link CvxqTensor#sideBytes} plus the layer's bias
     */
    public record Matrix(double[] scores, int slots, long parameters, long fixedBytes) {}

    /**
     * An allocation.
     *
     * @param log2Lambda the multiplier it was taken at
     * @param depths the depth of every partition of every matrix
     * @param bitsPerParameter every stored bit of the matrices per parameter
     */
    public record Allocation(double log2Lambda, List<byte[]> depths, double bitsPerParameter) {}

    /** The depth rule: {@code round(clamp(1/2 (score - log2Lambda), 0, 8))}. */
    public static int depth(double score, double log2Lambda) {
        double b = 0.5 * (score - log2Lambda);
        if (!(b > 0)) {
            return 0; // also NaN and -Infinity: no information, no bits
        }
        return (int) Math.rint(Math.min(b, LaplaceCodebook.MAX_DEPTH));
    }

    /** Depths of every partition of {@code m} at {@code log2Lambda}. */
    public static byte[] depths(Matrix m, double log2Lambda) {
        byte[] d = new byte[m.scores().length];
        for (int p = 0; p < d.length; p++) {
            d[p] = (byte) depth(m.scores()[p], log2Lambda);
        }
        return d;
    }

    /** Code bits per parameter at {@code log2Lambda}, side information not counted (the reference's bitrate). */
    public static double codeRate(List<Matrix> matrices, double log2Lambda) {
        double bits = 0;
        double parameters = 0;
        for (Matrix m : matrices) {
            for (double s : m.scores()) {
                bits += (double) depth(s, log2Lambda) * m.slots();
            }
            parameters += m.parameters();
        }
        return bits / parameters;
    }

    /** Every stored bit per parameter for {@code depths}: bit planes plus fixed bytes. */
    public static double storedRate(List<Matrix> matrices, List<byte[]> depths) {
        double bytes = 0;
        double parameters = 0;
        for (int i = 0; i < matrices.size(); i++) {
            Matrix m = matrices.get(i);
            bytes += CvxqTensor.codeBytes(depths.get(i), m.slots()) + m.fixedBytes();
            parameters += m.parameters();
        }
        return 8 * bytes / parameters;
    }

    /** The smallest and largest stored rate the matrices can have: every partition at depth 0, and at depth 8. */
    public static double[] reachableRates(List<Matrix> matrices) {
        return new double[] {storedRate(matrices, uniform(matrices, 0)), storedRate(matrices, uniform(matrices, 8))};
    }

    private static List<byte[]> uniform(List<Matrix> matrices, int depth) {
        List<byte[]> all = new ArrayList<>();
        for (Matrix m : matrices) {
            byte[] d = new byte[m.scores().length];
            java.util.Arrays.fill(d, (byte) depth);
            all.add(d);
        }
        return all;
    }

    /**
     * The reference's dual ascent: {@code iterations} times {@code log2Lambda += rate * (codeRate - target)}, starting
     * from {@code log2Lambda} with the rate taken as on target (so the first step changes nothing, as in the
     * reference). Returns the final {@code log2 lambda}.
     */
    public static double dualAscent(List<Matrix> matrices, double targetCodeRate, double log2Lambda, double rate,
            int iterations) {
        double current = targetCodeRate;
        double l = log2Lambda;
        for (int i = 0; i < iterations; i++) {
            l += rate * (current - targetCodeRate);
            current = codeRate(matrices, l);
        }
        return l;
    }

    /**
     * Depths whose stored rate is within {@code tolerance} of {@code targetBits} per parameter: the reference's dual
     * ascent from {@code log2Lambda} (on the code rate the target leaves after side information), then bisection on
     * {@code log2 lambda}, then single-partition steps across a tie.
     *
     * @throws IllegalArgumentException when the target lies outside {@link #reachableRates}
     */
    public static Allocation meetTarget(List<Matrix> matrices, double targetBits, double log2Lambda,
            double tolerance) {
        double[] reach = reachableRates(matrices);
        if (targetBits < reach[0] - tolerance || targetBits > reach[1] + tolerance) {
            throw new IllegalArgumentException(String.format(Locale.ROOT,
                    "a target of %.4f bits per parameter is out of reach: these matrices store %.4f bits per parameter"
                            + " at depth 0 (side information alone) and %.4f at depth 8",
                    targetBits, reach[0], reach[1]));
        }
        double side = reach[0];
        double start = dualAscent(matrices, targetBits - side, log2Lambda, ASCENT_RATE, ASCENT_ITERATIONS);
        // bracket: lo gives a rate at or above the target, hi at or below (the rate falls as lambda grows)
        double lo = start;
        double hi = start;
        double step = 1;
        while (rate(matrices, lo) < targetBits && lo > -2000) {
            lo -= step;
            step *= 2;
        }
        step = 1;
        while (rate(matrices, hi) > targetBits && hi < 2000) {
            hi += step;
            step *= 2;
        }
        for (int i = 0; i < BISECTIONS && hi - lo > 0; i++) {
            double mid = lo + (hi - lo) / 2;
            if (mid == lo || mid == hi) {
                break;
            }
            double r = rate(matrices, mid);
            if (Math.abs(r - targetBits) <= tolerance) {
                return allocation(matrices, mid);
            }
            if (r > targetBits) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        for (double l : new double[] {lo, hi}) {
            if (Math.abs(rate(matrices, l) - targetBits) <= tolerance) {
                return allocation(matrices, l);
            }
        }
        return acrossTie(matrices, lo, hi, targetBits, tolerance);
    }

    private static double rate(List<Matrix> matrices, double log2Lambda) {
        return storedRate(matrices, depthsAt(matrices, log2Lambda));
    }

    private static List<byte[]> depthsAt(List<Matrix> matrices, double log2Lambda) {
        List<byte[]> all = new ArrayList<>(matrices.size());
        for (Matrix m : matrices) {
            all.add(depths(m, log2Lambda));
        }
        return all;
    }

    private static Allocation allocation(List<Matrix> matrices, double log2Lambda) {
        List<byte[]> d = depthsAt(matrices, log2Lambda);
        return new Allocation(log2Lambda, d, storedRate(matrices, d));
    }

    /**
     * Partitions whose depth differs between {@code lo} and {@code hi} sit at one threshold; take them from their
     * {@code lo} depth toward their {@code hi} depth one bit at a time until the rate is within tolerance.
     */
    private static Allocation acrossTie(List<Matrix> matrices, double lo, double hi, double target, double tolerance) {
        List<byte[]> d = depthsAt(matrices, lo);
        List<byte[]> dHi = depthsAt(matrices, hi);
        double parameters = 0;
        double bytes = 0;
        for (int i = 0; i < matrices.size(); i++) {
            parameters += matrices.get(i).parameters();
            bytes += CvxqTensor.codeBytes(d.get(i), matrices.get(i).slots()) + matrices.get(i).fixedBytes();
        }
        for (int i = 0; i < matrices.size(); i++) {
            byte[] di = d.get(i);
            int slots = matrices.get(i).slots();
            int[] deeper = CvxqTensor.deeperThan(di);
            for (int p = 0; p < di.length; p++) {
                while (di[p] > dHi.get(i)[p] && 8 * bytes / parameters > target + tolerance) {
                    int k = --di[p]; // the partition leaves plane k
                    bytes -= CvxqTensor.planeBytes(deeper[k], slots) - CvxqTensor.planeBytes(deeper[k] - 1, slots);
                    deeper[k]--;
                }
            }
        }
        return new Allocation(lo, d, storedRate(matrices, d));
    }
}
