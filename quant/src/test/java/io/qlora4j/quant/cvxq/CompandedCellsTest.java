package io.qlora4j.quant.cvxq;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Random;
import org.junit.jupiter.api.Test;

class CompandedCellsTest {

    /** torch's Laplace(0, 1).cdf followed by the reference's floor and clamp, written out here in float64. */
    private static int referenceCode(double z, int depth) {
        double cdf = 0.5 - 0.5 * Math.signum(z) * Math.expm1(-Math.abs(z));
        return (int) Math.min(Math.floor(cdf * (1 << depth)), (1 << depth) - 1);
    }

    @Test
    void binarySearchGivesTheReferenceCodeEverywhere() {
        Random random = new Random(7);
        for (int depth = 0; depth <= LaplaceCodebook.MAX_DEPTH; depth++) {
            for (int i = 0; i < 20_000; i++) {
                double z = random.nextGaussian() * (i % 3 == 0 ? 6 : 1.5);
                assertEquals(referenceCode(z, depth), CompandedCells.code(z, depth), "z=" + z + " depth " + depth);
            }
            for (double z : new double[] {0.0, -0.0, 1e-300, -1e-300, 40, -40, Double.MAX_VALUE, -Double.MAX_VALUE}) {
                assertEquals(referenceCode(z, depth), CompandedCells.code(z, depth), "z=" + z + " depth " + depth);
            }
        }
    }

    @Test
    void codesChangeExactlyAtTheCellBoundaries() {
        for (int depth = 1; depth <= LaplaceCodebook.MAX_DEPTH; depth++) {
            for (int k = 1; k < 1 << depth; k++) {
                // the boundary in z of cell k: icdf(k / 2^d), where the reference formula steps from k - 1 to k
                double t = LaplaceCodebook.unitInverseCdf((double) k / (1 << depth));
                for (double z = Math.nextDown(Math.nextDown(t)); z <= Math.nextUp(Math.nextUp(t)); z = Math.nextUp(z)) {
                    assertEquals(referenceCode(z, depth), CompandedCells.code(z, depth), "z=" + z + " depth " + depth);
                }
            }
        }
    }
}
