package io.qlora4j.quant.cvxq;

/**
 * The cell boundaries of CVXQ's companded quantizer in the normalized domain {@code z = (w - loc) / b}: the code of
 * {@code z} at depth {@code d} is the reference's {@code min(floor(cdf(z) * 2^d), 2^d - 1)}, with torch's Laplace
 * {@code cdf}. Because that cdf, as computed in double precision, never decreases in {@code z}, the code is also
 * the number of boundaries {@code t_k <= z}, where {@code t_k} is the smallest double whose
 * {@code floor(cdf * 2^d)} reaches {@code k}. The boundaries are found once by bisection over the ordered doubles,
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

    /** The smallest finite double {@code z} with {@code codeByFormula(z, d) >= k}, by bisection on the ordered doubles. */
    private static double smallestReaching(int k, int depth) {
        long lo = ordinal(-Double.MAX_VALUE); // codeByFormula < k here
        long hi = ordinal(Double.MAX_VALUE); // and >= k here
        while (Long.compareUnsigned(hi - lo, 1) > 0) {
            long mid = lo + ((hi - lo) >>> 1); // hi - lo may exceed Long.MAX_VALUE: read it unsigned
            if (codeByFormula(fromOrdinal(mid), depth) >= k) {
                hi = mid;
            } else {
                lo = mid;
            }
        }
        return fromOrdinal(hi);
    }

    /** A long that orders doubles as their values do (-0.0 and 0.0 both map to 0). */
    private static long ordinal(double x) {
        long bits = Double.doubleToRawLongBits(x);
        return bits < 0 ? -(bits & Long.MAX_VALUE) : bits;
    }

    private static double fromOrdinal(long o) {
        return o < 0 ? Double.longBitsToDouble((-o) | Long.MIN_VALUE) : Double.longBitsToDouble(o);
    }
}
