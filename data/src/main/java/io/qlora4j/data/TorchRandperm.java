package io.qlora4j.data;

import io.qlora4j.model.TorchGenerator;

/**
 * {@code torch.randperm(n, generator=torch.Generator().manual_seed(seed))} on the CPU, value for value, so that an
 * epoch's order is the one transformers' Trainer draws: accelerate's seedable sampler seeds a generator with
 * {@code seed + epoch} for each epoch and yields {@code randperm(n)} (checked with transformers 5.12.1 and torch
 * 2.14). torch's {@code randperm} for {@code n} below 2^32 / 20 starts from {@code 0..n-1} and swaps, for
 * {@code i = 0..n-2}, entry {@code i} with entry {@code i + random() % (n - i)} ({@link TorchGenerator}).
 */
final class TorchRandperm {
    private TorchRandperm() {}

    /** The permutation of {@code 0..n-1} torch draws from a generator seeded with {@code seed}. */
    static int[] permutation(long seed, int n) {
        if (n >= (int) (0xFFFFFFFFL / 20)) {
            throw new IllegalArgumentException("torch draws a permutation of " + n + " another way; at most "
                    + (0xFFFFFFFFL / 20 - 1) + " here");
        }
        TorchGenerator generator = new TorchGenerator(seed);
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        for (int i = 0; i < n - 1; i++) {
            int z = (int) (Integer.toUnsignedLong(generator.random()) % (n - i));
            int t = order[i];
            order[i] = order[z + i];
            order[z + i] = t;
        }
        return order;
    }
}
