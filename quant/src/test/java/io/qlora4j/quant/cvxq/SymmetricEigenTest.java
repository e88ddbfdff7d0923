package io.qlora4j.quant.cvxq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

class SymmetricEigenTest {

    @Test
    void twoByTwoHasItsHandDerivedEigenpairs() {
        // [[2, 1], [1, 2]]: eigenvalues 3 and 1, eigenvectors (1, 1) / sqrt 2 and (1, -1) / sqrt 2
        SymmetricEigen e = new SymmetricEigen(new double[] {2, 1, 1, 2}, 2);
        assertArrayEquals(new double[] {3, 1}, e.values(), 1e-12);
        double[] top = e.topVectors(1)[0];
        assertEquals(1 / Math.sqrt(2), Math.abs(top[0]), 1e-12);
        assertEquals(top[0], top[1], 1e-12);
    }

    @Test
    void eigenpairsSatisfyTheDefinitionOnARandomCovariance() {
        Random random = new Random(3);
        int n = 40;
        double[] x = new double[200 * n];
        for (int i = 0; i < x.length; i++) {
            x[i] = random.nextGaussian() * (1 + (i % n) * 0.1);
        }
        double[] a = new double[n * n];
        for (int r = 0; r < 200; r++) {
            for (int i = 0; i < n; i++) {
                for (int j = 0; j < n; j++) {
                    a[i * n + j] += x[r * n + i] * x[r * n + j] / 200;
                }
            }
        }
        SymmetricEigen e = new SymmetricEigen(a, n);
        double[] values = e.values();
        double[][] vectors = e.topVectors(n);
        for (int k = 0; k < n; k++) {
            if (k > 0) {
                assertEquals(true, values[k] <= values[k - 1]);
            }
            double norm = 0;
            for (int i = 0; i < n; i++) {
                double av = 0;
                for (int j = 0; j < n; j++) {
                    av += a[i * n + j] * vectors[k][j];
                }
                assertEquals(values[k] * vectors[k][i], av, 1e-9);
                norm += vectors[k][i] * vectors[k][i];
            }
            assertEquals(1, norm, 1e-12);
        }
    }
}
