package io.qlora4j.data;

import io.qlora4j.model.TorchGenerator;

/**
 * LLaMA-Factory's {@code num_samples} draws, value for value: for each sampled dataset in the order the job loads
 * them, {@code np.random.permutation(n)[:k]}, then, when {@code k > n}, {@code np.random.choice(n, k - n)}, all from
 * numpy's legacy global generator, seeded once by transformers' {@code set_seed(seed)} ({@code np.random.seed(seed)}),
 * so that a job's second sampled dataset continues the stream the first left.
 *
 * <p>That generator is MT19937 seeded as torch's ({@link TorchGenerator}: both are the reference
 * {@code init_genrand}); {@code permutation} is numpy's shuffle ({@link NumpyPermutation#shuffled}) and {@code choice}
 * draws {@link NumpyPermutation#interval interval(n - 1)} per value (checked against numpy 2.4).
 */
final class NumpyLegacySample {
    private final TorchGenerator generator;

    /** The global stream after {@code np.random.seed(seed)}. */
    NumpyLegacySample(long seed) {
        if (seed < 0 || seed > 0xFFFFFFFFL) {
            throw new IllegalArgumentException("numpy's legacy seed must be 0 to 2^32 - 1, got " + seed);
        }
        generator = new TorchGenerator(seed);
    }

    /**
     * The record indices of the next dataset's {@code k} samples of its {@code n} records, in the order
     * LLaMA-Factory selects them.
     */
    int[] next(int n, int k) {
        int[] permutation = NumpyPermutation.shuffled(n, generator::random);
        int[] out = new int[k];
        for (int i = 0; i < k; i++) {
            out[i] = i < n ? permutation[i] : NumpyPermutation.interval(generator::random, n - 1);
        }
        return out;
    }
}
