package io.qlora4j.adapters;

/** Derived random seeds: one stream per module from one run seed, independent of the order they are asked for. */
final class Seeds {
    private Seeds() {}

    /** {@code seed} and {@code salt} mixed by SplitMix64's finalizer. */
    static long mix(long seed, long salt) {
        long z = seed + 0x9E3779B97F4A7C15L * (salt + 1L);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return z ^ (z >>> 31);
    }
}
