package io.qlora4j.quant.cvxq;

import io.qlora4j.quant.HalfFloats;
import java.util.Arrays;

/**
 * CVXQ's quantizer for one partition (the weights of one row cluster in one column), as the reference's
 * {@code LinearQ.quantize} does it: the location is the lower median of the values ({@code torch.median}), the
 * step exponent {@code s = 1/2 log2 mean((w - median)^2)}, and a weight is coded uniformly in the Laplace-companded
 * domain with location {@code loc = median + bias * 2^(s + mult)} and scale {@code b = 3 / 1.414213562 * 2^(s + mult)}:
 * code {@code min(floor(cdf((w - loc) / b) * 2^B), 2^B - 1)}, decoded to {@code loc + b * }{@link LaplaceCodebook}.
 * Without grid search {@code mult = bias = 0}; with it (what the reference saves), {@code mult} is first chosen from
 * {-2, -1.875, ..., 2} by the smallest mean squared error at {@code bias = 0}, then {@code bias} from the same grid
 * with that {@code mult}, a later candidate replacing the best on a tie, as the reference's {@code where} does.
 *
 * <p>qlora4j stores {@code loc} and {@code b} as float16, so every candidate is scored, and the codes are chosen, with
 * the float16 values that will decode them; decoding is {@code loc + b * level} in float32 arithmetic, exactly what
 * the device computes. A partition whose values are all equal gets {@code b = 0} and decodes to its median.
 */
public final class PartitionQuantizer {
    /** The reference's Laplace scale per RMS, the literal {@code 3 / 1.414213562}: a compander of 3 RMS. */
    static final double LAPLACE_PER_RMS = 3 / 1.414213562;

    private static final double GRID_STEP = 0.125;
    private static final int GRID_POINTS = 33; // -2 .. 2

    private final boolean gridSearch;

    private PartitionQuantizer(boolean gridSearch) {
        this.gridSearch = gridSearch;
    }

    /** The quantizer with {@code mult = bias = 0} (the reference's quantization between validations). */
    public static PartitionQuantizer plain() {
        return new PartitionQuantizer(false);
    }

    /** The quantizer that grid-searches {@code mult} and {@code bias} (what the reference saves). */
    public static PartitionQuantizer gridSearched() {
        return new PartitionQuantizer(true);
    }

    /**
     * How a partition decodes: {@code loc + scale * level(depth, code)}, both parameters as float16 bit patterns.
     *
     * @param loc the location (float16 bits)
     * @param scale the Laplace scale (float16 bits; 0 for a constant partition)
     */
    public record Decoder(short loc, short scale) {
        /** The location as a float. */
        public float locValue() {
            return HalfFloats.f16ToFloat(loc);
        }

        /** The scale as a float. */
        public float scaleValue() {
            return HalfFloats.f16ToFloat(scale);
        }

        /** The decoded value of {@code code} at {@code depth}, in float32 arithmetic as the device computes it. */
        public float decode(int depth, int code) {
            return locValue() + scaleValue() * LaplaceCodebook.level(depth, code);
        }
    }

    /**
     * Quantizes {@code values[0, n)} at {@code depth} bits, writes the codes (unsigned, {@code < 2^depth}) to
     * {@code codes[0, n)} and returns the decoder.
     *
     * @throws IllegalArgumentException when a decoder parameter does not fit float16 (weights beyond 65504)
     */
    public Decoder quantize(float[] values, int n, int depth, byte[] codes) {
        if (depth < 0 || depth > LaplaceCodebook.MAX_DEPTH) {
            throw new IllegalArgumentException("bit depth must be 0 to " + LaplaceCodebook.MAX_DEPTH + ", got " + depth);
        }
        float median = lowerMedian(values, n);
        double s = 0.5 * log2(meanSquareAbout(values, n, median));
        double mult = 0;
        double bias = 0;
        if (gridSearch) {
            double best = Double.POSITIVE_INFINITY;
            for (int g = 0; g < GRID_POINTS; g++) {
                double m = grid(g);
                double e = error(values, n, depth, decoder(median, 0, s + m), null);
                if (!(best < e)) { // torch.where(best < e, best, new): a tie takes the new one
                    best = e;
                    mult = m;
                }
            }
            for (int g = 0; g < GRID_POINTS; g++) {
                double b = grid(g);
                double e = error(values, n, depth, decoder(median, b, s + mult), null);
                if (!(best < e)) {
                    best = e;
                    bias = b;
                }
            }
        }
        Decoder d = decoder(median, bias, s + mult);
        error(values, n, depth, d, codes);
        return d;
    }

    /**
     * {@code log2 mean((w - median)^2)} over {@code values[0, n)} with the lower median: the {@code log2 S^2} of the
     * bit-depth rule ({@code -Infinity} for a constant partition).
     */
    public static double log2Variance(float[] values, int n) {
        return log2(meanSquareAbout(values, n, lowerMedian(values, n)));
    }

    /** {@code torch.median}: the lower of the two middle values for an even count. */
    static float lowerMedian(float[] values, int n) {
        if (n < 1) {
            throw new IllegalArgumentException("a partition needs at least one value");
        }
        float[] sorted = Arrays.copyOf(values, n);
        Arrays.sort(sorted);
        return sorted[(n - 1) / 2];
    }

    private static double meanSquareAbout(float[] values, int n, float center) {
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double d = (double) values[i] - center;
            sum += d * d;
        }
        return sum / n;
    }

    private static double log2(double x) {
        return Math.log(x) / Math.log(2);
    }

    private static double grid(int g) {
        return -2 + g * GRID_STEP;
    }

    /** The decoder for {@code loc = median + bias * 2^exponent} and {@code b = LAPLACE_PER_RMS * 2^exponent}. */
    private static Decoder decoder(float median, double bias, double exponent) {
        double unit = Math.pow(2, exponent);
        double loc = median + (bias == 0 ? 0 : bias * unit);
        return new Decoder(half(loc, "location"), half(LAPLACE_PER_RMS * unit, "scale"));
    }

    private static short half(double value, String what) {
        short h = HalfFloats.floatToF16((float) value);
        if (!Float.isFinite(HalfFloats.f16ToFloat(h))) {
            throw new IllegalArgumentException("CVXQ partition " + what + " " + value + " does not fit float16");
        }
        return h;
    }

    /** The sum of squared errors of coding {@code values} with {@code d}; writes the codes when {@code codes} is given. */
    private static double error(float[] values, int n, int depth, Decoder d, byte[] codes) {
        float loc = d.locValue();
        float scale = d.scaleValue();
        double sum = 0;
        for (int i = 0; i < n; i++) {
            int code = depth == 0 || scale == 0 ? 0 : CompandedCells.code(((double) values[i] - loc) / scale, depth);
            float decoded = loc + scale * LaplaceCodebook.TABLE[(1 << depth) + code];
            double e = (double) decoded - values[i];
            sum += e * e;
            if (codes != null) {
                codes[i] = (byte) code;
            }
        }
        return sum;
    }
}
