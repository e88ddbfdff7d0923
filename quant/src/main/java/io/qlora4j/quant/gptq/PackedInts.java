package io.qlora4j.quant.gptq;

/**
 * The little-endian bit stream GPTQ packs codes into: field {@code j} of a run of int32 words sits at stream bit
 * {@code bits * j}, word {@code bits * j / 32}, and a 3-bit field may straddle two words (fields 10 and 21 of each
 * three-word block).
 */
final class PackedInts {
    private PackedInts() {}

    /** Field {@code j} of the stream that starts at {@code words[start]} and steps {@code stride} ints per word. */
    static int field(int[] words, int start, int stride, int j, int bits) {
        long bit = (long) bits * j;
        int word = (int) (bit >>> 5);
        int shift = (int) (bit & 31);
        long low = words[start + word * stride] & 0xFFFFFFFFL;
        if (shift + bits > 32) {
            low |= (words[start + (word + 1) * stride] & 0xFFFFFFFFL) << 32;
        }
        return (int) ((low >>> shift) & ((1 << bits) - 1));
    }

    /** Writes field {@code j} (the inverse of {@link #field}); the field's bits must be clear. */
    static void put(int[] words, int start, int stride, int j, int bits, int value) {
        long bit = (long) bits * j;
        int word = (int) (bit >>> 5);
        int shift = (int) (bit & 31);
        long v = (long) value << shift;
        words[start + word * stride] |= (int) v;
        if (shift + bits > 32) {
            words[start + (word + 1) * stride] |= (int) (v >>> 32);
        }
    }
}
