package io.qlora4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import java.util.Arrays;
import org.junit.jupiter.api.Test;

/**
 * {@link NumpyLegacySample} against numpy 2.4.6: {@code np.random.seed(seed); idx = np.random.permutation(n)[:k]},
 * then {@code np.concatenate((idx, np.random.choice(n, k - len(idx))))} when {@code k > n}, as LLaMA-Factory's
 * {@code num_samples} draws (first 12 and last 5 indices, and {@code sum((i + 1) * idx[i])}).
 */
class NumpyLegacySampleTest {

    private static void assertSample(long seed, int n, int k, int[] head, int[] tail, long weighted) {
        int[] idx = new NumpyLegacySample(seed).next(n, k);
        assertEquals(k, idx.length);
        assertArrayEquals(head, Arrays.copyOf(idx, head.length), "seed " + seed);
        assertArrayEquals(tail, Arrays.copyOfRange(idx, k - tail.length, k), "seed " + seed);
        long sum = 0;
        for (int i = 0; i < k; i++) {
            sum += (long) (i + 1) * idx[i];
        }
        assertEquals(weighted, sum, "seed " + seed);
    }

    @Test
    void samplesAreNumpysLegacyDrawsAfterTheSeed() {
        assertSample(42, 10, 10, new int[] {8, 1, 5, 0, 7, 2, 9, 4, 3, 6}, new int[] {2, 9, 4, 3, 6}, 254);
        // 15 more than the records: the permutation, then choice with replacement from the same stream
        assertSample(42, 10, 25, new int[] {8, 1, 5, 0, 7, 2, 9, 4, 3, 6, 2, 6}, new int[] {1, 7, 5, 1, 4}, 1396);
        assertSample(7, 1000, 5, new int[] {778, 334, 271, 802, 216}, new int[] {778, 334, 271, 802, 216}, 6547);
        assertSample(0, 3, 7, new int[] {2, 1, 0, 1, 0, 1, 1}, new int[] {0, 1, 0, 1, 1}, 21);
        assertSample(1234, 5000, 5003, new int[] {2706, 2436, 1201, 1486, 4286, 2391, 4911, 3262, 1361, 149, 3123,
            2395}, new int[] {723, 2863, 771, 3207, 1376}, 31376837503L);
    }

    @Test
    void laterDatasetsContinueTheStreamTheFirstLeft() {
        // np.random.seed(42); permutation(10)[:4]; then permutation(7) and choice(7, 3) (10 of 7 records); then
        // permutation(5)[:2]: one global generator for all the datasets of a job, as LLaMA-Factory loads them
        NumpyLegacySample numpy = new NumpyLegacySample(42);
        assertArrayEquals(new int[] {8, 1, 5, 0}, numpy.next(10, 4));
        assertArrayEquals(new int[] {4, 1, 0, 3, 5, 6, 2, 2, 5, 4}, numpy.next(7, 10));
        assertArrayEquals(new int[] {0, 2}, numpy.next(5, 2));
        // a fresh stream would have drawn the second dataset as {0, 1, 5, 2, 4, 3, 6}
    }
}
