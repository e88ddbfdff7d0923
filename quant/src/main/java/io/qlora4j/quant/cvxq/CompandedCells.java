package io.qlora4j.quant.cvxq;

/**
 * The cell boundaries of CVXQ's companded quantizer in the normalized domain {@code z = (w - loc) / b}: the code of
 * {@code z} at depth {@code d} is the reference's {@code min(floor(cdf(z) * 2^d), 2^d - 1)}, with torch's Laplace
 * {@code cdf}. Because that cdf, as computed in double precision, never decreases in {@code z}, the code is also
 * the number of boundaries {@code t_k <= z}, where {@code t_k} is the smallest double whose
 * {@code floor(cdf * 2^d)} reaches {@code k}. The boundaries are found once by bisection on values around {@code icdf(k / 2^d)},
 * so quantizing a weight costs a binary search instead of an {@code expm1} per candidate step size.
 */
final class CompandedCells {
    /** {@code BOUNDS[d][k - 1] = t_k} for {@code k = 1 .. 2^d - 1}. */
    private static final double[][] BOUNDS = build();

    private CompandedCells() {}

    /** The reference's formula: {@code min(floor(cdf(z) * 2^d), 2^d - 1)}. */
    static int codeByFormula(double z, int depth) {
        int levels = 1 << depth;
        return (int) Math.min(Math.floor(LaplaceCodebook.unitCdf(z) * levels), levels - 1);
    }

    /** The same code by binary search over the boundaries. */
    static int code(double z, int depth) {
        double[] t = BOUNDS[depth];
        int lo = 0;
        int hi = t.length;
        while (lo < hi) {
            int mid = (lo + hi) >>> 1;
            if (t[mid] <= z) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }

    private static double[][] build() {
        double[][] bounds = new double[LaplaceCodebook.MAX_DEPTH + 1][];
        for (int d = 0; d <= LaplaceCodebook.MAX_DEPTH; d++) {
            bounds[d] = new double[(1 << d) - 1];
            for (int k = 1; k < 1 << d; k++) {
                bounds[d][k - 1] = smallestReaching(k, d);
            }
        }
        return bounds;
    }

    /**
     * The smallest double {@code z} with {@code codeByFormula(z, d) >= k}: bisection on values between
     * {@code icdf(k / 2^d) -+ 1} (the exact boundary, which the formula misses by rounding only) until the two ends
     * are neighbouring doubles.
     */
    private static double smallestReaching(int k, int depth) {
        double exact = LaplaceCodebook.unitInverseCdf((double) k / (1 << depth));
        double below = exact - 1;
        double reached = exact + 1;
        for (double mid = below + (reached - below) / 2; mid != below && mid != reached;
                mid = below + (reached - below) / 2) {
            if (codeByFormula(mid, depth) >= k) {
                reached = mid;
            } else {
                below = mid;
            }
        }
        return reached;
    }
}
