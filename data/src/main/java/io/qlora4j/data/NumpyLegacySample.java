package io.qlora4j.data;

import io.qlora4j.model.TorchGenerator;

/**
 * LLaMA-Factory's {@code num_samples} draw, value for value: {@code np.random.permutation(n)[:k]}, then, when
 * {@code k > n}, {@code np.random.choice(n, k - n)}, from numpy's legacy global generator right after
 * transformers' {@code set_seed(seed)} ({@code np.random.seed(seed)}).
 *
 * <p>That generator is MT19937 seeded as torch's ({@link TorchGenerator}: both are the reference
 * {@code init_genrand}); {@code permutation} is numpy's shuffle ({@link NumpyPermutation#shuffled}) and {@code choice}
 * draws {@link NumpyPermutation#interval interval(n - 1)} per value (checked against numpy 2.4). A second sampled
 * dataset of one job continues LLaMA-Factory's global stream; here each dataset starts from the seed, so only a
 * job's first sampled dataset is drawn as there.
 */
final class NumpyLegacySample {
    private NumpyLegacySample() {}

    /** The record indices of {@code k} samples of {@code n} records, in the order LLaMA-Factory selects them. */
    static int[] of(long seed, int n, int k) {
        if (seed < 0 || seed > 0xFFFFFFFFL) {
            throw new IllegalArgumentException("numpy's legacy seed must be 0 to 2^32 - 1, got " + seed);
        }
        TorchGenerator generator = new TorchGenerator(seed);
        int[] permutation = NumpyPermutation.shuffled(n, generator::random);
        int[] out = new int[k];
        for (int i = 0; i < k; i++) {
            out[i] = i < n ? permutation[i] : NumpyPermutation.interval(generator::random, n - 1);
        }
        return out;
    }
}
