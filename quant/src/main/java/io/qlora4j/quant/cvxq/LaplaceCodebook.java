package io.qlora4j.quant.cvxq;

/**
 * The reconstruction levels of CVXQ's companded quantizer for a unit Laplace distribution: at depth {@code d}, code
 * {@code i} decodes to {@code icdf((i + 0.5) / 2^d)}, the midpoint (in probability) of the {@code i}-th of
 * {@code 2^d} equal-probability cells, where {@code icdf(p) = -sign(p - 1/2) log1p(-2 |p - 1/2|)} is torch's
 * {@code Laplace(0, 1).icdf}. A partition with location {@code loc} and Laplace scale {@code b} decodes code
 * {@code i} to {@code loc + b * level(d, i)}.
 *
 * <p>The table is laid out as the reference repository's {@code macros.h} lays out its {@code DEQUANT} table:
 * entry {@code 2^d + i} holds depth {@code d}, code {@code i} (entry 0 is unused and 0). {@code macros.h} covers
 * depths 0 to 7 (256 entries, printed to six decimals); this table adds depth 8 (entries 256 to 511), as the
 * reference's PyTorch quantizer allows depths up to 8. Values are the float32 roundings of the double-precision
 * formula.
 */
public final class LaplaceCodebook {
    /** The largest bit depth of a partition. */
    public static final int MAX_DEPTH = 8;

    /** Entry {@code 2^d + i}: depth {@code d}, code {@code i}. */
    static final float[] TABLE = build();

    private LaplaceCodebook() {}

    /** {@code Laplace(0, 1).cdf(z) = 1/2 - 1/2 sign(z) expm1(-|z|)}, torch's formula. */
    static double unitCdf(double z) {
        return 0.5 - 0.5 * Math.signum(z) * Math.expm1(-Math.abs(z));
    }

    /** {@code Laplace(0, 1).icdf(p) = -sign(p - 1/2) log1p(-2 |p - 1/2|)}, torch's formula. */
    static double unitInverseCdf(double p) {
        double t = p - 0.5;
        return -Math.signum(t) * Math.log1p(-2 * Math.abs(t));
    }

    private static float[] build() {
        float[] table = new float[2 << MAX_DEPTH];
        for (int d = 0; d <= MAX_DEPTH; d++) {
            int levels = 1 << d;
            for (int i = 0; i < levels; i++) {
                table[levels + i] = (float) unitInverseCdf((i + 0.5) / levels);
            }
        }
        return table;
    }

    /** The level of code {@code index} at depth {@code depth} (0 to {@link #MAX_DEPTH}). */
    public static float level(int depth, int index) {
        if (depth < 0 || depth > MAX_DEPTH || index < 0 || index >= 1 << depth) {
            throw new IllegalArgumentException("no code " + index + " at depth " + depth);
        }
        return TABLE[(1 << depth) + index];
    }

    /** The whole table, {@code 2^(MAX_DEPTH + 1)} entries indexed by {@code 2^d + i} (a copy). */
    public static float[] table() {
        return TABLE.clone();
    }
}
