package io.qlora4j.data;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Random;

/**
 * The order of the examples in one epoch, a pure function of (seed, epoch) so that a resumed run
 * sees the same order. Shuffling: transformers' Trainer's, {@code torch.randperm(n)} from a generator seeded with
 * {@code seed + epoch} ({@link TorchRandperm}), so an epoch sees the examples in the order LLaMA-Factory's does. With
 * {@code group_by_length}, transformers'
 * {@code get_length_grouped_indices}: the shuffled order is cut into mega-batches of
 * {@code min(n / (4 * batch), 50)} (at least 1) batches, each sorted by length, longest first
 * (stable), and the longest example overall is moved to the very first place.
 */
final class BatchOrder {

    private final long seed;
    private final boolean shuffle;
    private final boolean groupByLength;
    private final int batchSize;

    BatchOrder(long seed, boolean shuffle, boolean groupByLength, int batchSize) {
        this.seed = seed;
        this.shuffle = shuffle;
        this.groupByLength = groupByLength;
        this.batchSize = batchSize;
    }

    /** The example indices of {@code epoch} in training order. */
    int[] order(int[] lengths, int epoch) {
        int n = lengths.length;
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        if (shuffle) {
            order = TorchRandperm.permutation(seed + epoch, n);
        }
        return groupByLength ? groupByLength(order, lengths) : order;
    }

    /**
     * Fisher-Yates from the end, as {@code Collections.shuffle}: the sampled and streamed readers' own shuffles
     * ({@code for i = n-1..1: swap(i, nextInt(i + 1))}).
     */
    static void shuffle(int[] values, Random random) {
        for (int i = values.length - 1; i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = values[i];
            values[i] = values[j];
            values[j] = t;
        }
    }

    private int[] groupByLength(int[] shuffled, int[] lengths) {
        int n = shuffled.length;
        int megaBatch = Math.max(Math.min(n / (batchSize * 4), 50), 1) * batchSize;
        List<List<Integer>> megaBatches = new ArrayList<>();
        for (int start = 0; start < n; start += megaBatch) {
            List<Integer> group = new ArrayList<>();
            for (int i = start; i < Math.min(start + megaBatch, n); i++) {
                group.add(shuffled[i]);
            }
            group.sort(Comparator.comparingInt((Integer i) -> lengths[i]).reversed());
            megaBatches.add(group);
        }
        int longest = 0;
        for (int g = 1; g < megaBatches.size(); g++) {
            if (lengths[megaBatches.get(g).get(0)] > lengths[megaBatches.get(longest).get(0)]) {
                longest = g;
            }
        }
        Integer first = megaBatches.get(0).get(0);
        megaBatches.get(0).set(0, megaBatches.get(longest).get(0));
        megaBatches.get(longest).set(0, first);
        int[] out = new int[n];
        int at = 0;
        for (List<Integer> group : megaBatches) {
            for (int i : group) {
                out[at++] = i;
            }
        }
        return out;
    }
}
