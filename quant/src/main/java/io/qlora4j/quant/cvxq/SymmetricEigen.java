package io.qlora4j.quant.cvxq;

/**
 * Eigenvalues and eigenvectors of a real symmetric matrix in float64: Householder reduction to tridiagonal form,
 * then the QL algorithm with implicit shifts (EISPACK's {@code tred2} and {@code tql2}), {@code O(n^3)}. CVXQ uses it
 * for the principal directions of the final hidden states it takes gradients along (the reference calls
 * {@code torch.linalg.eig} on their covariance).
 */
public final class SymmetricEigen {
    private final int n;
    private final double[] values;
    private final double[][] vectors; // vectors[i][k]: component i of eigenvector k

    /** Decomposes {@code a} ({@code n x n}, row-major, symmetric; only read). */
    public SymmetricEigen(double[] a, int n) {
        if (a.length != (long) n * n) {
            throw new IllegalArgumentException("expected " + n + " x " + n + " values, got " + a.length);
        }
        this.n = n;
        this.values = new double[n];
        this.vectors = new double[n][n];
        for (int i = 0; i < n; i++) {
            System.arraycopy(a, i * n, vectors[i], 0, n);
        }
        double[] off = new double[n];
        tridiagonalize(off);
        diagonalize(off);
    }

    /** The eigenvalues, descending. */
    public double[] values() {
        double[] v = new double[n];
        int[] order = order();
        for (int k = 0; k < n; k++) {
            v[k] = values[order[k]];
        }
        return v;
    }

    /** The eigenvectors of the {@code count} largest eigenvalues, as rows {@code [count][n]} of unit length. */
    public double[][] topVectors(int count) {
        int[] order = order();
        double[][] out = new double[Math.min(count, n)][n];
        for (int k = 0; k < out.length; k++) {
            for (int i = 0; i < n; i++) {
                out[k][i] = vectors[i][order[k]];
            }
        }
        return out;
    }

    /** Column indices by descending eigenvalue, ties by index. */
    private int[] order() {
        return java.util.stream.IntStream.range(0, n).boxed()
                .sorted((x, y) -> values[x] != values[y] ? Double.compare(values[y], values[x]) : Integer.compare(x, y))
                .mapToInt(Integer::intValue).toArray();
    }

    /** Householder tridiagonalization (tred2): diagonal to {@code values}, subdiagonal to {@code off}. */
    private void tridiagonalize(double[] off) {
        double[][] v = vectors;
        double[] d = values;
        System.arraycopy(v[n - 1], 0, d, 0, n);
        for (int i = n - 1; i > 0; i--) {
            double scale = 0;
            double h = 0;
            for (int k = 0; k < i; k++) {
                scale += Math.abs(d[k]);
            }
            if (scale == 0) {
                off[i] = d[i - 1];
                for (int j = 0; j < i; j++) {
                    d[j] = v[i - 1][j];
                    v[i][j] = 0;
                    v[j][i] = 0;
                }
            } else {
                for (int k = 0; k < i; k++) {
                    d[k] /= scale;
                    h += d[k] * d[k];
                }
                double f = d[i - 1];
                double g = Math.sqrt(h);
                if (f > 0) {
                    g = -g;
                }
                off[i] = scale * g;
                h -= f * g;
                d[i - 1] = f - g;
                for (int j = 0; j < i; j++) {
                    off[j] = 0;
                }
                for (int j = 0; j < i; j++) {
                    f = d[j];
                    v[j][i] = f;
                    g = off[j] + v[j][j] * f;
                    for (int k = j + 1; k <= i - 1; k++) {
                        g += v[k][j] * d[k];
                        off[k] += v[k][j] * f;
                    }
                    off[j] = g;
                }
                f = 0;
                for (int j = 0; j < i; j++) {
                    off[j] /= h;
                    f += off[j] * d[j];
                }
                double hh = f / (h + h);
                for (int j = 0; j < i; j++) {
                    off[j] -= hh * d[j];
                }
                for (int j = 0; j < i; j++) {
                    f = d[j];
                    g = off[j];
                    for (int k = j; k <= i - 1; k++) {
                        v[k][j] -= f * off[k] + g * d[k];
                    }
                    d[j] = v[i - 1][j];
                    v[i][j] = 0;
                }
            }
            d[i] = h;
        }
        for (int i = 0; i < n - 1; i++) {
            v[n - 1][i] = v[i][i];
            v[i][i] = 1;
            double h = d[i + 1];
            if (h != 0) {
                for (int k = 0; k <= i; k++) {
                    d[k] = v[k][i + 1] / h;
                }
                for (int j = 0; j <= i; j++) {
                    double g = 0;
                    for (int k = 0; k <= i; k++) {
                        g += v[k][i + 1] * v[k][j];
                    }
                    for (int k = 0; k <= i; k++) {
                        v[k][j] -= g * d[k];
                    }
                }
            }
            for (int k = 0; k <= i; k++) {
                v[k][i + 1] = 0;
            }
        }
        for (int j = 0; j < n; j++) {
            d[j] = v[n - 1][j];
            v[n - 1][j] = 0;
        }
        v[n - 1][n - 1] = 1;
        off[0] = 0;
    }

    /** The QL algorithm with implicit shifts on the tridiagonal form (tql2), accumulating the rotations. */
    private void diagonalize(double[] e) {
        double[][] v = vectors;
        double[] d = values;
        for (int i = 1; i < n; i++) {
            e[i - 1] = e[i];
        }
        e[n - 1] = 0;
        double f = 0;
        double tst1 = 0;
        double eps = Math.ulp(1.0);
        for (int l = 0; l < n; l++) {
            tst1 = Math.max(tst1, Math.abs(d[l]) + Math.abs(e[l]));
            int m = l;
            while (m < n) {
                if (Math.abs(e[m]) <= eps * tst1) {
                    break;
                }
                m++;
            }
            if (m > l) {
                do {
                    double g = d[l];
                    double p = (d[l + 1] - g) / (2 * e[l]);
                    double r = Math.hypot(p, 1);
                    if (p < 0) {
                        r = -r;
                    }
                    d[l] = e[l] / (p + r);
                    d[l + 1] = e[l] * (p + r);
                    double dl1 = d[l + 1];
                    double h = g - d[l];
                    for (int i = l + 2; i < n; i++) {
                        d[i] -= h;
                    }
                    f += h;
                    p = d[m];
                    double c = 1;
                    double c2 = c;
                    double c3 = c;
                    double el1 = e[l + 1];
                    double s = 0;
                    double s2 = 0;
                    for (int i = m - 1; i >= l; i--) {
                        c3 = c2;
                        c2 = c;
                        s2 = s;
                        g = c * e[i];
                        h = c * p;
                        r = Math.hypot(p, e[i]);
                        e[i + 1] = s * r;
                        s = e[i] / r;
                        c = p / r;
                        p = c * d[i] - s * g;
                        d[i + 1] = h + s * (c * g + s * d[i]);
                        for (int k = 0; k < n; k++) {
                            h = v[k][i + 1];
                            v[k][i + 1] = s * v[k][i] + c * h;
                            v[k][i] = c * v[k][i] - s * h;
                        }
                    }
                    p = -s * s2 * c3 * el1 * e[l] / dl1;
                    e[l] = s * p;
                    d[l] = c * p;
                } while (Math.abs(e[l]) > eps * tst1);
            }
            d[l] += f;
            e[l] = 0;
        }
    }
}
