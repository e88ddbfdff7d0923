package io.qlora4j.quant.cvxq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class BitAllocatorTest {

    private static double log2(double x) {
        return Math.log(x) / Math.log(2);
    }

    /** Every stored bit per parameter, recounted here from the format's layout: planes, side bytes, fixed bytes. */
    private static double recount(List<BitAllocator.Matrix> matrices, List<byte[]> depths) {
        double bytes = 0;
        double parameters = 0;
        for (int i = 0; i < matrices.size(); i++) {
            BitAllocator.Matrix m = matrices.get(i);
            for (int k = 0; k < 8; k++) {
                long deeper = 0;
                for (byte d : depths.get(i)) {
                    deeper += d > k ? 1 : 0;
                }
                bytes += Math.ceil(deeper * m.slots() / 8.0);
            }
            bytes += m.fixedBytes();
            parameters += m.parameters();
        }
        return 8 * bytes / parameters;
    }

    /**
     * Two matrices of 8-row partitions with weight variances S^2 and gains G^2 chosen by hand. The closed form (reverse
     * water-filling on d_n = G^2 S^2 2^(-2B)): B_n = 1/2 log2(G_n^2 S_n^2 / theta), or 0 where G^2 S^2 <= theta, with
     * theta set by the budget. With G^2 S^2 = 2^10, 2^8, 2^6, 2^2, 2^-4 (matrix A) and 2^12, 2^4 (matrix B) and a
     * budget of 3 + 2 + 1 + 4 = 10 bits per slot row, theta = 2^4 gives depths 3, 2, 1, 0, 0 and 4, 0.
     */
    @Test
    void allocationEqualsTheClosedFormOnAHandBuiltCase() {
        double[] s2a = {Math.pow(2, -2), Math.pow(2, -6), 1, Math.pow(2, -8), Math.pow(2, -4)};
        double[] g2a = {Math.pow(2, 12), Math.pow(2, 14), Math.pow(2, 6), Math.pow(2, 10), 1};
        double[] s2b = {Math.pow(2, -4), Math.pow(2, -10)};
        double[] g2b = {Math.pow(2, 16), Math.pow(2, 14)};
        double theta = 16;
        List<BitAllocator.Matrix> matrices = new ArrayList<>();
        List<byte[]> closedForm = new ArrayList<>();
        for (double[][] sg : new double[][][] {{s2a, g2a}, {s2b, g2b}}) {
            double[] scores = new double[sg[0].length];
            byte[] expected = new byte[scores.length];
            for (int n = 0; n < scores.length; n++) {
                scores[n] = log2(sg[0][n]) + log2(sg[1][n]);
                expected[n] = (byte) Math.max(0, Math.round(0.5 * log2(sg[0][n] * sg[1][n] / theta)));
            }
            // 8 rows x 1 column per partition: 8 slots, 8 parameters each; 40 fixed bytes
            matrices.add(new BitAllocator.Matrix(scores, 8, 8L * scores.length, 40));
            closedForm.add(expected);
        }
        double budget = (8.0 * (3 + 2 + 1 + 4) + 8 * 80) / 56; // code bits + fixed bits, per parameter
        BitAllocator.Allocation a = BitAllocator.meetTarget(matrices, budget, BitAllocator.INITIAL_LOG2_LAMBDA, 0.01);
        assertArrayEquals(closedForm.get(0), a.depths().get(0));
        assertArrayEquals(closedForm.get(1), a.depths().get(1));
        assertArrayEquals(new byte[] {3, 2, 1, 0, 0}, a.depths().get(0));
        assertEquals(budget, a.bitsPerParameter(), 1e-12);
    }

    @Test
    void depthRuleClampsToZeroAndEightAndRoundsHalfToEven() {
        assertEquals(0, BitAllocator.depth(-10, 0));
        assertEquals(8, BitAllocator.depth(100, 0));
        assertEquals(2, BitAllocator.depth(5, 0)); // 2.5 -> 2
        assertEquals(4, BitAllocator.depth(7, 0)); // 3.5 -> 4
        assertEquals(0, BitAllocator.depth(Double.NEGATIVE_INFINITY, -30));
    }

    /** Matrices shaped like a small Llama's: 64 columns, clusters of 32 rows, scores spread as real ones are. */
    private static List<BitAllocator.Matrix> realistic(Random random) {
        List<BitAllocator.Matrix> matrices = new ArrayList<>();
        for (int[] shape : new int[][] {{256, 64}, {64, 256}, {192, 64}, {64, 64}, {512, 128}}) {
            int clusters = shape[0] / 32;
            double[] scores = new double[clusters * shape[1]];
            double offset = random.nextGaussian() * 3;
            for (int p = 0; p < scores.length; p++) {
                scores[p] = offset - 30 + 4 * random.nextGaussian();
            }
            long fixed = CvxqTensor.sideBytes(shape[0], shape[1], clusters) + 2L * shape[0];
            matrices.add(new BitAllocator.Matrix(scores, 32, (long) shape[0] * shape[1], fixed));
        }
        return matrices;
    }

    @Test
    void storedRateMeetsEveryTargetWithinAHundredthOfABitCountingSideInformation() {
        List<BitAllocator.Matrix> matrices = realistic(new Random(5));
        for (double target : new double[] {2, 2.5, 3, 3.5, 4, 6}) {
            BitAllocator.Allocation a = BitAllocator.meetTarget(matrices, target, BitAllocator.INITIAL_LOG2_LAMBDA, 0.01);
            double recounted = recount(matrices, a.depths());
            assertEquals(recounted, a.bitsPerParameter(), 1e-12);
            assertTrue(Math.abs(recounted - target) <= 0.01, "target " + target + " got " + recounted);
        }
    }

    @Test
    void referenceDualAscentAloneMissesTheTargetThatBisectionMeets() {
        List<BitAllocator.Matrix> matrices = realistic(new Random(8));
        double side = BitAllocator.reachableRates(matrices)[0];
        double l = BitAllocator.dualAscent(matrices, 3 - side, BitAllocator.INITIAL_LOG2_LAMBDA,
                BitAllocator.ASCENT_RATE, BitAllocator.ASCENT_ITERATIONS);
        double ascended = BitAllocator.storedRate(matrices, depthsAt(matrices, l));
        BitAllocator.Allocation met = BitAllocator.meetTarget(matrices, 3, BitAllocator.INITIAL_LOG2_LAMBDA, 0.01);
        assertTrue(Math.abs(met.bitsPerParameter() - 3) <= 0.01);
        assertTrue(Math.abs(ascended - 3) < 1.5, "ten ascent steps come near: " + ascended);
    }

    private static List<byte[]> depthsAt(List<BitAllocator.Matrix> matrices, double l) {
        List<byte[]> d = new ArrayList<>();
        for (BitAllocator.Matrix m : matrices) {
            d.add(BitAllocator.depths(m, l));
        }
        return d;
    }

    @Test
    void tiedPartitionsAreSplitToMeetTheTarget() {
        double[] scores = new double[100];
        Arrays.fill(scores, -20); // every partition changes depth at the same lambda
        List<BitAllocator.Matrix> matrices = List.of(new BitAllocator.Matrix(scores, 64, 6400, 0));
        BitAllocator.Allocation a = BitAllocator.meetTarget(matrices, 3.5, BitAllocator.INITIAL_LOG2_LAMBDA, 0.01);
        assertTrue(Math.abs(a.bitsPerParameter() - 3.5) <= 0.01, "got " + a.bitsPerParameter());
    }

    @Test
    void targetBelowTheSideInformationIsRefusedWithTheReachableRange() {
        List<BitAllocator.Matrix> matrices = realistic(new Random(2));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BitAllocator.meetTarget(matrices, 0.05, BitAllocator.INITIAL_LOG2_LAMBDA, 0.01));
        assertTrue(e.getMessage().contains("out of reach"), e.getMessage());
    }
}
