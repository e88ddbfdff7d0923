package io.qlora4j.data;

/**
 * {@code torch.randperm(n, generator=torch.Generator().manual_seed(seed))} on the CPU, value for value, so that an
 * epoch's order is the one transformers' Trainer draws: accelerate's seedable sampler seeds a generator with
 * {@code seed + epoch} for each epoch and yields {@code randperm(n)} (checked with transformers 5.12.1 and torch
 * 2.14).
 *
 * <p>torch's CPU generator is the 32-bit Mersenne Twister MT19937 seeded with the seed's low 32 bits
 * ({@code state[0] = seed}, {@code state[j] = 1812433253 * (state[j-1] ^ (state[j-1] >>> 30)) + j}), and its
 * {@code randperm} for {@code n} below 2^32 / 20 starts from {@code 0..n-1} and swaps, for {@code i = 0..n-2}, entry
 * {@code i} with entry {@code i + random() % (n - i)}.
 */
final class TorchRandperm {
    private static final int N = 624;
    private static final int M = 397;

    private final int[] state = new int[N];
    private int next = N;

    private TorchRandperm(long seed) {
        state[0] = (int) seed;
        for (int j = 1; j < N; j++) {
            state[j] = 1812433253 * (state[j - 1] ^ (state[j - 1] >>> 30)) + j;
        }
    }

    /** The permutation of {@code 0..n-1} torch draws from a generator seeded with {@code seed}. */
    static int[] permutation(long seed, int n) {
        if (n >= (int) (0xFFFFFFFFL / 20)) {
            throw new IllegalArgumentException("torch draws a permutation of " + n + " another way; at most "
                    + (0xFFFFFFFFL / 20 - 1) + " here");
        }
        TorchRandperm generator = new TorchRandperm(seed);
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

    /** The next 32-bit output (tempered), regenerating the state every 624 draws. */
    private int random() {
        if (next == N) {
            twist();
        }
        int y = state[next++];
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        return y ^ (y >>> 18);
    }

    private void twist() {
        for (int k = 0; k < N; k++) {
            int y = (state[k] & 0x80000000) | (state[(k + 1) % N] & 0x7fffffff);
            state[k] = state[(k + M) % N] ^ (y >>> 1) ^ ((y & 1) != 0 ? 0x9908b0df : 0);
        }
        next = 0;
    }
}
