package io.qlora4j.adapters;

/**
 * The eigen-decomposition {@code A = Z^T diag(values) Z} of a symmetric matrix in float64, on the host: Householder
 * reduction to a tridiagonal matrix, then implicit QR steps with Wilkinson's shift (Golub and Van Loan, algorithms
 * 8.3.1 and 8.3.3), the rotations accumulated into {@code Z}. About {@code 6 k^3} flops for a {@code k x k} matrix;
 * DJL 0.36 exposes no eigen or SVD routine of libtorch, so PiSSA's and LoftQ's decompositions end here.
 *
 * @param values the eigenvalues, largest first
 * @param vectors row i is the unit eigenvector of {@code values[i]}
 */
record SymmetricEigen(double[] values, double[][] vectors) {
    private static final double EPS = Math.ulp(1.0);

    /** Decomposes {@code a} ({@code k x k}, symmetric; only its lower triangle is read). */
    static SymmetricEigen of(double[][] a) {
        int k = a.length;
        double[][] t = new double[k][];
        for (int i = 0; i < k; i++) {
            t[i] = new double[k];
            for (int j = 0; j <= i; j++) {
                t[i][j] = a[i][j];
                t[j][i] = a[i][j];
            }
        }
        double[][] z = identity(k);
        tridiagonalize(t, z);
        double[] d = new double[k];
        double[] e = new double[Math.max(k - 1, 0)];
        for (int i = 0; i < k; i++) {
            d[i] = t[i][i];
            if (i + 1 < k) {
                e[i] = t[i + 1][i];
            }
        }
        diagonalize(d, e, z);
        return sorted(d, z);
    }

    /**
     * Overwrites {@code t} by {@code H t H} for Householder reflections {@code H} that make it tridiagonal, and
     * multiplies them into the rows of {@code z} ({@code z <- H z}), so {@code A = z^T T z} holds throughout.
     */
    private static void tridiagonalize(double[][] t, double[][] z) {
        int k = t.length;
        for (int j = 0; j + 2 < k; j++) {
            int m = k - j - 1;
            double norm = 0;
            for (int i = 0; i < m; i++) {
                norm += t[j + 1 + i][j] * t[j + 1 + i][j];
            }
            norm = Math.sqrt(norm);
            if (norm == 0) {
                continue;
            }
            double alpha = t[j + 1][j] >= 0 ? -norm : norm;
            double[] v = new double[m];
            for (int i = 0; i < m; i++) {
                v[i] = t[j + 1 + i][j];
            }
            v[0] -= alpha;
            double vv = 0;
            for (double x : v) {
                vv += x * x;
            }
            if (vv == 0) {
                continue;
            }
            double beta = 2 / vv;
            // S <- H S H for the trailing block S, with p = beta S v, w = p - (beta p.v / 2) v: S - v w^T - w v^T
            double[] p = new double[m];
            for (int r = 0; r < m; r++) {
                double[] row = t[j + 1 + r];
                double sum = 0;
                for (int c = 0; c < m; c++) {
                    sum += row[j + 1 + c] * v[c];
                }
                p[r] = beta * sum;
            }
            double pv = 0;
            for (int i = 0; i < m; i++) {
                pv += p[i] * v[i];
            }
            double half = beta * pv / 2;
            for (int i = 0; i < m; i++) {
                p[i] -= half * v[i];
            }
            for (int r = 0; r < m; r++) {
                double[] row = t[j + 1 + r];
                for (int c = 0; c < m; c++) {
                    row[j + 1 + c] -= v[r] * p[c] + p[r] * v[c];
                }
            }
            t[j + 1][j] = alpha;
            t[j][j + 1] = alpha;
            for (int i = 1; i < m; i++) {
                t[j + 1 + i][j] = 0;
                t[j][j + 1 + i] = 0;
            }
            // z <- H z on rows j+1..: z_r -= beta v_r (v . z)
            double[] vz = new double[k];
            for (int i = 0; i < m; i++) {
                double[] row = z[j + 1 + i];
                for (int c = 0; c < k; c++) {
                    vz[c] += v[i] * row[c];
                }
            }
            for (int i = 0; i < m; i++) {
                double[] row = z[j + 1 + i];
                double f = beta * v[i];
                for (int c = 0; c < k; c++) {
                    row[c] -= f * vz[c];
                }
            }
        }
    }

    /**
     * Drives the symmetric tridiagonal matrix (diagonal {@code d}, subdiagonal {@code e}) to diagonal by implicit
     * shifted QR steps on its unreduced blocks, applying each plane rotation {@code P} as {@code T <- P T P^T} and
     * {@code z <- P z}.
     */
    private static void diagonalize(double[] d, double[] e, double[][] z) {
        int k = d.length;
        int hi = k - 1;
        int steps = 0;
        while (hi > 0) {
            if (Math.abs(e[hi - 1]) <= EPS * (Math.abs(d[hi - 1]) + Math.abs(d[hi]))) {
                e[hi - 1] = 0;
                hi--;
                continue;
            }
            if (++steps > 60 * k) {
                throw new ArithmeticException("symmetric eigen-decomposition did not converge");
            }
            int lo = hi - 1;
            while (lo > 0 && Math.abs(e[lo - 1]) > EPS * (Math.abs(d[lo - 1]) + Math.abs(d[lo]))) {
                lo--;
            }
            double delta = (d[hi - 1] - d[hi]) / 2;
            double b = e[hi - 1];
            double mu = d[hi] - b * b / (delta + Math.copySign(Math.hypot(delta, b), delta == 0 ? 1 : delta));
            double x = d[lo] - mu;
            double bulge = e[lo];
            for (int i = lo; i < hi; i++) {
                double r = Math.hypot(x, bulge);
                double c = r == 0 ? 1 : x / r;
                double s = r == 0 ? 0 : bulge / r;
                if (i > lo) {
                    e[i - 1] = r;
                }
                double a0 = d[i];
                double b0 = e[i];
                double d1 = d[i + 1];
                d[i] = c * c * a0 + 2 * c * s * b0 + s * s * d1;
                d[i + 1] = s * s * a0 - 2 * c * s * b0 + c * c * d1;
                e[i] = c * s * (d1 - a0) + (c * c - s * s) * b0;
                if (i + 1 < hi) {
                    bulge = s * e[i + 1];
                    e[i + 1] *= c;
                    x = e[i];
                }
                double[] zi = z[i];
                double[] zj = z[i + 1];
                for (int col = 0; col < zi.length; col++) {
                    double u = zi[col];
                    double w = zj[col];
                    zi[col] = c * u + s * w;
                    zj[col] = -s * u + c * w;
                }
            }
        }
    }

    private static SymmetricEigen sorted(double[] d, double[][] z) {
        Integer[] order = new Integer[d.length];
        for (int i = 0; i < order.length; i++) {
            order[i] = i;
        }
        java.util.Arrays.sort(order, (p, q) -> Double.compare(d[q], d[p]));
        double[] values = new double[d.length];
        double[][] vectors = new double[d.length][];
        for (int i = 0; i < order.length; i++) {
            values[i] = d[order[i]];
            vectors[i] = z[order[i]];
        }
        return new SymmetricEigen(values, vectors);
    }

    private static double[][] identity(int k) {
        double[][] z = new double[k][k];
        for (int i = 0; i < k; i++) {
            z[i][i] = 1;
        }
        return z;
    }
}
