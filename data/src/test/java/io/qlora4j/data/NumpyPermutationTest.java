package io.qlora4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import org.junit.jupiter.api.Test;

import java.util.Arrays;

/**
 * Every expected value here was printed by numpy 2.4.6: {@code np.random.default_rng(seed).permutation(n)}, and for
 * the large sizes its first 8 and last 4 values and {@code sum(i * p[i] for i, p in enumerate(perm))}.
 */
class NumpyPermutationTest {

    @Test
    void smallSizesMatchNumpyForEachSeed() {
        Object[][] cases = {
                {0L, new int[] {4, 6, 2, 7, 3, 5, 9, 0, 8, 1}, new int[] {0, 1}},
                {1L, new int[] {8, 4, 7, 0, 1, 2, 5, 9, 6, 3}, new int[] {0, 1}},
                {42L, new int[] {5, 6, 0, 7, 3, 2, 4, 9, 1, 8}, new int[] {1, 0}},
                {1234L, new int[] {8, 9, 5, 0, 2, 6, 4, 7, 1, 3}, new int[] {1, 0}},
                {(1L << 31) - 1, new int[] {1, 8, 3, 2, 0, 7, 5, 6, 4, 9}, new int[] {1, 0}},
                // above 2^32 the seed is two 32-bit words of entropy
                {(1L << 32) + 5, new int[] {6, 7, 4, 2, 5, 0, 9, 8, 3, 1}, new int[] {0, 1}}};
        for (Object[] c : cases) {
            long seed = (long) c[0];
            assertArrayEquals((int[]) c[1], NumpyPermutation.of(seed, 10), "seed " + seed);
            assertArrayEquals((int[]) c[2], NumpyPermutation.of(seed, 2), "seed " + seed);
            assertArrayEquals(new int[] {0}, NumpyPermutation.of(seed, 1), "seed " + seed);
            assertArrayEquals(new int[0], NumpyPermutation.of(seed, 0), "seed " + seed);
        }
    }

    @Test
    void largeSizesMatchNumpyThroughout() {
        assertLarge(42, 1000, new int[] {978, 933, 859, 916, 127, 608, 856, 260}, new int[] {609, 961, 973, 648},
                248321539L);
        assertLarge(42, 100000, new int[] {45262, 49850, 30394, 90177, 95569, 10900, 193, 98908},
                new int[] {70338, 5668, 22113, 75400}, 249152033752609L);
        assertLarge((1L << 31) - 1, 1000, new int[] {397, 477, 243, 533, 175, 955, 702, 610},
                new int[] {205, 811, 441, 618}, 248713907L);
        assertLarge((1L << 31) - 1, 100000, new int[] {50248, 89934, 21945, 2235, 93234, 58058, 35989, 74765},
                new int[] {75881, 2253, 45497, 50794}, 250071639693724L);
    }

    @Test
    void negativeSeedIsRefusedAsNumpyDoes() {
        assertThrows(IllegalArgumentException.class, () -> NumpyPermutation.of(-1, 3));
    }

    private static void assertLarge(long seed, int n, int[] head, int[] tail, long weightedSum) {
        int[] permutation = NumpyPermutation.of(seed, n);
        String name = "seed " + seed + ", n " + n;
        assertArrayEquals(head, Arrays.copyOf(permutation, head.length), name);
        assertArrayEquals(tail, Arrays.copyOfRange(permutation, n - tail.length, n), name);
        long sum = 0;
        for (int i = 0; i < n; i++) {
            sum += (long) i * permutation[i];
        }
        assertEquals(weightedSum, sum, name);
    }
}
