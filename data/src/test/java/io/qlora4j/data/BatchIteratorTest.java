package io.qlora4j.data;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;

class BatchIteratorTest {

    /** Example i holds ids {i, i, ...} (length 1 + i % 4), labels the ids but the first. */
    static List<Example> examples(int n) {
        List<Example> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            int length = 1 + i % 4;
            int[] ids = new int[length];
            int[] labels = new int[length];
            java.util.Arrays.fill(ids, 100 + i);
            java.util.Arrays.fill(labels, 100 + i);
            labels[0] = -100;
            out.add(new Example(ids, labels));
        }
        return out;
    }

    static BatchIterator iterator(List<Example> examples, int batch, DataPosition start) throws DataException {
        return new BatchIterator(new MemoryEpochs(examples, new BatchOrder(42, true, false, batch)), new Collator(7),
                batch, start);
    }

    @Test
    void collatePadsRightWithPadIdZeroMaskAndIgnoredLabels() {
        Example a = new Example(new int[] {5, 6, 7}, new int[] {-100, 6, 7});
        Example b = new Example(new int[] {8, 9, 10, 11, 12}, new int[] {-100, -100, 10, 11, 12});
        Batch batch = new Collator(0).collate(List.of(a, b));
        assertEquals(2, batch.rows());
        assertEquals(5, batch.columns());
        assertArrayEquals(new long[] {5, 6, 7, 0, 0, 8, 9, 10, 11, 12}, batch.inputIds());
        assertArrayEquals(new long[] {1, 1, 1, 0, 0, 1, 1, 1, 1, 1}, batch.attentionMask());
        assertArrayEquals(new long[] {0, 1, 2, 0, 0, 0, 1, 2, 3, 4}, batch.positionIds());
        assertArrayEquals(new long[] {-100, 6, 7, -100, -100, -100, -100, 10, 11, 12}, batch.labels());
        assertEquals(8, batch.tokens());
        assertEquals(5, batch.labelledTokens());
    }

    @Test
    void packedRowsNumberTheirExamplesAndRestartPositions() {
        Example packed = new Example(new int[] {1, 2, 3, 4, 5}, new int[] {-100, 2, -100, 4, 5}, new int[] {2, 3});
        Batch batch = new Collator(0).collate(List.of(packed, new Example(new int[] {9}, new int[] {9})));
        assertArrayEquals(new long[] {1, 1, 2, 2, 2, 1, 0, 0, 0, 0}, batch.attentionMask());
        assertArrayEquals(new long[] {0, 1, 0, 1, 2, 0, 0, 0, 0, 0}, batch.positionIds());
    }

    @Test
    void epochOrderIsTorchRandpermWithSeedPlusEpochAsTheTrainersSampler() throws DataException {
        // torch.randperm(10, generator=torch.Generator().manual_seed(42 + epoch)).tolist(), torch 2.14.1
        List<List<Integer>> orders = List.of(List.of(2, 6, 1, 8, 4, 5, 0, 9, 3, 7), List.of(8, 4, 9, 0, 5, 1, 6, 7, 2, 3));
        List<Example> examples = examples(10);
        BatchIterator it = iterator(examples, 3, DataPosition.START);
        assertEquals(4, it.batchesPerEpoch());
        for (int epoch = 0; epoch < 2; epoch++) {
            List<Integer> expected = orders.get(epoch);
            List<Integer> seen = new ArrayList<>();
            for (int b = 0; b < 4; b++) {
                Batch batch = it.next();
                for (int r = 0; r < batch.rows(); r++) {
                    seen.add((int) batch.inputIds()[r * batch.columns()] - 100);
                }
            }
            assertEquals(expected, seen, "epoch " + epoch);
        }
        assertEquals(new DataPosition(2, 0), it.position());
    }

    @Test
    void resumedIteratorContinuesWithTheExactNextBatch() throws DataException {
        List<Example> examples = examples(10);
        BatchIterator straight = iterator(examples, 3, DataPosition.START);
        List<Batch> all = new ArrayList<>();
        DataPosition saved = null;
        for (int i = 0; i < 9; i++) {
            if (i == 5) {
                saved = straight.position();
            }
            all.add(straight.next());
        }
        assertEquals(new DataPosition(1, 1), saved);
        BatchIterator resumed = iterator(examples, 3, saved);
        for (int i = 5; i < 9; i++) {
            Batch expected = all.get(i);
            Batch actual = resumed.next();
            assertArrayEquals(expected.inputIds(), actual.inputIds(), "batch " + i);
            assertArrayEquals(expected.labels(), actual.labels(), "batch " + i);
        }
    }

    @Test
    void groupByLengthSortsMegaBatchesLongestFirst() {
        int[] lengths = {3, 9, 1, 4, 8, 2, 7, 5, 6, 10, 2, 3};
        // 12 examples, batch 1: mega-batch = min(12 / 4, 50) = 3 examples
        // torch.randperm(12, generator=torch.Generator().manual_seed(42)).tolist(), torch 2.14.1
        List<Integer> shuffled = List.of(6, 8, 1, 7, 0, 2, 10, 11, 4, 3, 5, 9);
        List<Integer> expected = new ArrayList<>();
        for (int g = 0; g < 12; g += 3) {
            List<Integer> group = new ArrayList<>(shuffled.subList(g, g + 3));
            group.sort((x, y) -> Integer.compare(lengths[y], lengths[x]));
            expected.addAll(group);
        }
        int longestAt = expected.indexOf(9);
        Collections.swap(expected, 0, longestAt);
        int[] order = new BatchOrder(42, true, true, 1).order(lengths, 0);
        assertArrayEquals(expected.stream().mapToInt(Integer::intValue).toArray(), order);
        assertEquals(9, order[0]);
    }

    static long paddedTokensOfOneEpoch(List<Example> examples, boolean group) throws DataException {
        BatchIterator it = new BatchIterator(new MemoryEpochs(examples, new BatchOrder(7, true, group, 4)),
                new Collator(0), 4, DataPosition.START);
        long padded = 0;
        for (int b = 0; b < it.batchesPerEpoch(); b++) {
            Batch batch = it.next();
            padded += (long) batch.rows() * batch.columns() - batch.tokens();
        }
        return padded;
    }

    @Test
    void groupByLengthCutsPaddingOnASkewedSet() throws DataException {
        Random random = new Random(1);
        List<Example> examples = new ArrayList<>();
        for (int i = 0; i < 2000; i++) {
            int length = random.nextInt(10) == 0 ? 200 + random.nextInt(300) : 5 + random.nextInt(40);
            examples.add(new Example(new int[length], new int[length]));
        }
        long plain = paddedTokensOfOneEpoch(examples, false);
        long grouped = paddedTokensOfOneEpoch(examples, true);
        System.out.printf("group_by_length: padded tokens %d -> %d (%.1fx fewer)%n", plain, grouped,
                (double) plain / grouped);
        assertTrue(grouped * 5 < plain, plain + " vs " + grouped);
    }
}
