package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * {@link SymmetricEigen} and {@link TruncatedSvd} against the defining equations: {@code A z = lambda z} with
 * orthonormal z; {@code W v = s u}, {@code W^T u = s v} with orthonormal u and v, s descending, and (at full rank)
 * {@code sum s^2 = ||W||^2}, which together make the r kept triplets the top r; and a randomised SVD of a matrix with
 * a known spectrum.
 */
class TruncatedSvdTest {

    @Test
    void eigenvectorsOfRandomAndRepeatedSpectraSatisfyTheEquationAndAreOrthonormal() {
        Random random = new Random(1);
        int k = 37;
        double[][] a = new double[k][k];
        for (int i = 0; i < k; i++) {
            for (int j = 0; j <= i; j++) {
                a[i][j] = random.nextGaussian();
                a[j][i] = a[i][j];
            }
        }
        checkEigen(a);
        // Q diag(3, 3, 3, 1, 1, -2) Q^T: repeated eigenvalues, one negative
        double[] spectrum = {3, 3, 3, 1, 1, -2};
        double[][] q = orthonormalColumns(random, 6, 6);
        double[][] b = new double[6][6];
        for (int i = 0; i < 6; i++) {
            for (int j = 0; j < 6; j++) {
                for (int t = 0; t < 6; t++) {
                    b[i][j] += q[i][t] * spectrum[t] * q[j][t];
                }
            }
        }
        SymmetricEigen e = checkEigen(b);
        for (int i = 0; i < 6; i++) {
            assertEquals(spectrum[i], e.values()[i], 1e-12);
        }
    }

    @ParameterizedTest(name = "{0} x {1}, rank {2}")
    @CsvSource({"24, 40, 24", "40, 24, 24", "33, 20, 5"})
    void exactTripletsSatisfyTheSvdEquationsAndAtFullRankCarryTheWholeNorm(int m, int n, int r) {
        Random random = new Random(m * 100 + n);
        float[] w = Fixtures.gaussian(random, m * n);
        try (NDManager manager = NDManager.newBaseManager()) {
            TruncatedSvd svd = TruncatedSvd.exact(manager.create(w, new Shape(m, n)), r);
            double scale = checkTriplets(w, m, n, svd, 1e-6);
            if (r == Math.min(m, n)) {
                double norm = 0;
                for (float x : w) {
                    norm += (double) x * x;
                }
                double sum = 0;
                for (double s : svd.s()) {
                    sum += s * s;
                }
                assertEquals(norm, sum, 1e-9 * norm);
            }
            assertTrue(scale > 1);
        }
    }

    @Test
    void randomizedSvdFindsTheTopTripletsOfAMatrixWithAKnownDecayingSpectrum() {
        Random random = new Random(5);
        int m = 32;
        int n = 48;
        int k = 20;
        double[][] u = orthonormalColumns(random, m, k);
        double[][] v = orthonormalColumns(random, n, k);
        float[] w = new float[m * n];
        for (int i = 0; i < m; i++) {
            for (int j = 0; j < n; j++) {
                double sum = 0;
                for (int t = 0; t < k; t++) {
                    sum += u[i][t] * Math.pow(0.5, t) * v[j][t];
                }
                w[i * n + j] = (float) sum;
            }
        }
        try (NDManager manager = NDManager.newBaseManager()) {
            TruncatedSvd svd = TruncatedSvd.randomized(manager.create(w, new Shape(m, n)), 4, 4, new Random(6));
            for (int t = 0; t < 4; t++) {
                assertEquals(Math.pow(0.5, t), svd.s()[t], 1e-5, "singular value " + t);
                double dot = 0;
                for (int i = 0; i < m; i++) {
                    dot += svd.u()[i][t] * u[i][t];
                }
                assertEquals(1, Math.abs(dot), 1e-5, "left vector " + t);
            }
            checkTriplets(w, m, n, svd, 1e-3); // 4 power iterations leave about (1/2)^9 of the next direction
        }
    }

    /** Checks the triplets to {@code tolerance} of the largest singular value and orthonormality; returns it. */
    private static double checkTriplets(float[] w, int m, int n, TruncatedSvd svd, double tolerance) {
        int r = svd.s().length;
        double top = svd.s()[0];
        for (int t = 0; t < r; t++) {
            if (t > 0) {
                assertTrue(svd.s()[t] <= svd.s()[t - 1] + 1e-12, "descending");
            }
            for (int i = 0; i < m; i++) {
                double wv = 0;
                for (int j = 0; j < n; j++) {
                    wv += w[i * n + j] * svd.v()[j][t];
                }
                assertEquals(svd.s()[t] * svd.u()[i][t], wv, tolerance * top, "W v = s u");
            }
            for (int j = 0; j < n; j++) {
                double wu = 0;
                for (int i = 0; i < m; i++) {
                    wu += w[i * n + j] * svd.u()[i][t];
                }
                assertEquals(svd.s()[t] * svd.v()[j][t], wu, tolerance * top, "W^T u = s v");
            }
            for (int q = 0; q <= t; q++) {
                double uu = 0;
                double vv = 0;
                for (int i = 0; i < m; i++) {
                    uu += svd.u()[i][t] * svd.u()[i][q];
                }
                for (int j = 0; j < n; j++) {
                    vv += svd.v()[j][t] * svd.v()[j][q];
                }
                assertEquals(q == t ? 1 : 0, uu, 1e-6);
                assertEquals(q == t ? 1 : 0, vv, 1e-6);
            }
        }
        return top;
    }

    private static SymmetricEigen checkEigen(double[][] a) {
        SymmetricEigen e = SymmetricEigen.of(a);
        int k = a.length;
        double norm = 0;
        for (double[] row : a) {
            for (double x : row) {
                norm = Math.max(norm, Math.abs(x));
            }
        }
        for (int t = 0; t < k; t++) {
            if (t > 0) {
                assertTrue(e.values()[t] <= e.values()[t - 1], "descending");
            }
            double[] z = e.vectors()[t];
            for (int i = 0; i < k; i++) {
                double az = 0;
                for (int j = 0; j < k; j++) {
                    az += a[i][j] * z[j];
                }
                assertEquals(e.values()[t] * z[i], az, 1e-12 * k * norm, "A z = lambda z");
            }
            for (int q = 0; q <= t; q++) {
                double dot = 0;
                for (int i = 0; i < k; i++) {
                    dot += z[i] * e.vectors()[q][i];
                }
                assertEquals(q == t ? 1 : 0, dot, 1e-12 * k);
            }
        }
        return e;
    }

    /** A random {@code [rows][cols]} matrix with orthonormal columns (Gram-Schmidt of Gaussian columns). */
    static double[][] orthonormalColumns(Random random, int rows, int cols) {
        double[][] c = new double[cols][rows];
        for (int j = 0; j < cols; j++) {
            for (int i = 0; i < rows; i++) {
                c[j][i] = random.nextGaussian();
            }
            for (int pass = 0; pass < 2; pass++) {
                for (int q = 0; q < j; q++) {
                    double dot = 0;
                    for (int i = 0; i < rows; i++) {
                        dot += c[j][i] * c[q][i];
                    }
                    for (int i = 0; i < rows; i++) {
                        c[j][i] -= dot * c[q][i];
                    }
                }
            }
            double norm = 0;
            for (double x : c[j]) {
                norm += x * x;
            }
            for (int i = 0; i < rows; i++) {
                c[j][i] /= Math.sqrt(norm);
            }
        }
        double[][] out = new double[rows][cols];
        for (int i = 0; i < rows; i++) {
            for (int j = 0; j < cols; j++) {
                out[i][j] = c[j][i];
            }
        }
        return out;
    }
}
