package io.qlora4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * {@link TorchRandperm} against {@code torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()}
 * printed by torch 2.14.1 (CPU): whole permutations where short, else the first 12 and last 4 values and
 * {@code sum((i + 1) * p[i])}.
 */
class TorchRandpermTest {

    private static void assertPermutation(long seed, int n, int[] head, int[] tail, long weighted) {
        int[] p = TorchRandperm.permutation(seed, n);
        assertArrayEquals(head, Arrays.copyOf(p, head.length), "seed " + seed + ", n " + n);
        assertArrayEquals(tail, Arrays.copyOfRange(p, n - tail.length, n), "seed " + seed + ", n " + n);
        long sum = 0;
        for (int i = 0; i < n; i++) {
            sum += (long) (i + 1) * p[i];
        }
        assertEquals(weighted, sum, "seed " + seed + ", n " + n);
    }

    @Test
    void permutationsAreTorchsValueForValue() {
        assertArrayEquals(new int[] {6, 8, 9, 2, 1, 10, 0, 7, 3, 5, 4}, TorchRandperm.permutation(42, 11));
        assertArrayEquals(new int[] {3, 9, 4, 2, 8, 7, 6, 10, 1, 5, 0}, TorchRandperm.permutation(43, 11));
        assertArrayEquals(new int[] {0}, TorchRandperm.permutation(0, 1));
        assertArrayEquals(new int[] {0, 1}, TorchRandperm.permutation(0, 2));
        assertArrayEquals(new int[] {5, 0, 3, 4, 1, 7, 9, 6, 8, 2}, TorchRandperm.permutation(7, 10));
        assertPermutation(42, 1000, new int[] {542, 618, 816, 68, 94, 215, 60, 585, 942, 165, 968, 829},
                new int[] {284, 638, 96, 455}, 251382058L);
        assertPermutation(2147483653L, 50, new int[] {7, 40, 11, 45, 41, 49, 13, 30, 25, 39, 5, 20},
                new int[] {31, 9, 23, 18}, 32453L);
        // 5000 draws: the generator's state is regenerated several times
        assertPermutation(123456789, 5000, new int[] {408, 1792, 2258, 2058, 842, 1580, 1292, 4239, 1026, 1614, 2997,
            1482}, new int[] {2766, 4550, 1735, 2457}, 31246992469L);
        // torch's generator keeps the seed's low 32 bits
        assertPermutation(4294967299L, 20, new int[] {6, 12, 3, 7, 1, 5, 8, 9, 2, 17, 14, 11},
                new int[] {15, 0, 18, 16}, 2270L);
    }
}
