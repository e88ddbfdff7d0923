package io.qlora4j.data;

import java.util.function.IntSupplier;

/**
 * {@code numpy.random.default_rng(seed).permutation(n)}, value for value, so that a split drawn from it (datasets'
 * {@code train_test_split}, which LLaMA-Factory's {@code val_size} uses) picks the records Python picks.
 *
 * <p>The three steps, as numpy (1.17 on; checked against 2.4) defines them:
 * <ol>
 * <li>{@code SeedSequence(seed)}: the seed cut into 32-bit words, lowest first ({@code [0]} for 0), hashed into a
 * pool of 4 words ({@code hashmix}, then every word mixed into every other), and the pool hashed out again into
 * 8 words, read as 4 little-endian 64-bit words ({@code generate_state(4, uint64)});</li>
 * <li>{@code PCG64}: 128-bit state and increment from words 0-1 and 2-3 (the first of each pair the high half);
 * {@code inc = seq << 1 | 1}, {@code state = 0}, one step, add the seed, one step. Each draw steps
 * ({@code state = state * M + inc}) then outputs XSL-RR ({@code rotr(high ^ low, high >>> 58)}); a 32-bit draw
 * takes the low half of a 64-bit one and keeps the high half for the next 32-bit draw;</li>
 * <li>{@code Generator.shuffle(arange(n))}: Fisher-Yates from the end, {@code j = random_interval(i)} for
 * {@code i = n-1..1}: 32-bit draws masked to the smallest all-ones mask covering {@code i}, redrawn while above
 * {@code i}. (numpy draws 64 bits for {@code i} beyond 2^32 - 1, which no {@code int} size reaches.)</li>
 * </ol>
 */
final class NumpyPermutation {

    private static final int INIT_A = 0x43b0d7e5;
    private static final int MULT_A = 0x931e8875;
    private static final int INIT_B = 0x8b51f9dd;
    private static final int MULT_B = 0x58f38ded;
    private static final int MIX_MULT_L = 0xca01f9dd;
    private static final int MIX_MULT_R = 0x4973f715;
    private static final int POOL_SIZE = 4;
    private static final long MULTIPLIER_HIGH = 2549297995355413924L;
    private static final long MULTIPLIER_LOW = 4865540595714422341L;

    private long stateHigh;
    private long stateLow;
    private final long incHigh;
    private final long incLow;
    private boolean hasHalf;
    private int half;

    private NumpyPermutation(long[] words) {
        incHigh = words[2] << 1 | words[3] >>> 63;
        incLow = words[3] << 1 | 1;
        step();
        stateLow += words[1];
        stateHigh += words[0] + (Long.compareUnsigned(stateLow, words[1]) < 0 ? 1 : 0);
        step();
    }

    /**
     * {@code numpy.random.default_rng(seed).permutation(n)}.
     *
     * @throws IllegalArgumentException for a negative seed or size (numpy refuses a negative seed too)
     */
    static int[] of(long seed, int n) {
        if (seed < 0 || n < 0) {
            throw new IllegalArgumentException("numpy permutation: seed " + seed + " and size " + n
                    + " must not be negative");
        }
        return shuffled(n, new NumpyPermutation(seedWords(seed))::next32);
    }

    /**
     * numpy's shuffle of {@code arange(n)} (the legacy {@code RandomState}'s and {@code Generator}'s alike): Fisher-Yates
     * from the end, {@code j = interval(i)} for {@code i = n-1..1}, over the 32-bit draws of {@code next32}.
     */
    static int[] shuffled(int n, IntSupplier next32) {
        int[] values = new int[n];
        for (int i = 0; i < n; i++) {
            values[i] = i;
        }
        for (int i = n - 1; i > 0; i--) {
            int j = interval(next32, i);
            int t = values[i];
            values[i] = values[j];
            values[j] = t;
        }
        return values;
    }

    /**
     * numpy's {@code random_interval(max)} for {@code 0 <= max < 2^31}: 32-bit draws masked to the smallest all-ones
     * mask covering {@code max}, redrawn while above it.
     */
    static int interval(IntSupplier next32, int max) {
        if (max == 0) {
            return 0;
        }
        int mask = -1 >>> Integer.numberOfLeadingZeros(max);
        int value;
        do {
            value = next32.getAsInt() & mask;
        } while (value > max);
        return value;
    }

    /** {@code SeedSequence(seed).generate_state(4, uint64)}. */
    private static long[] seedWords(long seed) {
        int[] entropy = seed >>> 32 == 0 ? new int[] {(int) seed} : new int[] {(int) seed, (int) (seed >>> 32)};
        int[] pool = new int[POOL_SIZE];
        int[] hashConst = {INIT_A};
        for (int i = 0; i < POOL_SIZE; i++) {
            pool[i] = hashmix(i < entropy.length ? entropy[i] : 0, hashConst);
        }
        for (int src = 0; src < POOL_SIZE; src++) {
            for (int dst = 0; dst < POOL_SIZE; dst++) {
                if (src != dst) {
                    pool[dst] = mix(pool[dst], hashmix(pool[src], hashConst));
                }
            }
        }
        long[] words = new long[4];
        int hash = INIT_B;
        for (int i = 0; i < 2 * words.length; i++) {
            int value = pool[i % POOL_SIZE] ^ hash;
            hash *= MULT_B;
            value *= hash;
            value ^= value >>> 16;
            words[i / 2] |= Integer.toUnsignedLong(value) << (32 * (i % 2));
        }
        return words;
    }

    /** SeedSequence's hash of one word; advances the running multiplier {@code hashConst[0]}. */
    private static int hashmix(int value, int[] hashConst) {
        value ^= hashConst[0];
        hashConst[0] *= MULT_A;
        value *= hashConst[0];
        return value ^ value >>> 16;
    }

    private static int mix(int x, int y) {
        int result = MIX_MULT_L * x - MIX_MULT_R * y;
        return result ^ result >>> 16;
    }

    /** {@code state = state * M + inc} modulo 2^128. */
    private void step() {
        long productHigh = unsignedMultiplyHigh(stateLow, MULTIPLIER_LOW) + stateHigh * MULTIPLIER_LOW
                + stateLow * MULTIPLIER_HIGH;
        long productLow = stateLow * MULTIPLIER_LOW;
        stateLow = productLow + incLow;
        stateHigh = productHigh + incHigh + (Long.compareUnsigned(stateLow, productLow) < 0 ? 1 : 0);
    }

    private static long unsignedMultiplyHigh(long a, long b) {
        return Math.multiplyHigh(a, b) + (a >> 63 & b) + (b >> 63 & a);
    }

    private long next64() {
        step();
        return Long.rotateRight(stateHigh ^ stateLow, (int) (stateHigh >>> 58));
    }

    private int next32() {
        if (hasHalf) {
            hasHalf = false;
            return half;
        }
        long next = next64();
        hasHalf = true;
        half = (int) (next >>> 32);
        return (int) next;
    }
}
