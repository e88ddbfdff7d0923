package io.qlora4j.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorSpecies;

/**
 * Codes packed as bit fields of bytes or int32 words (HQQ's 4-, 2- and 1-bit packings, and its 3-bit one, ten codes
 * per int32), decoded to {@code (code - zero) * scale} in SIMD lanes with the JDK's incubating Vector API: 16 words
 * (bytes widened to ints first, {@link #widen}) shifted and masked to their field, converted to float32, then the same
 * float32 subtraction and multiply as the scalar loop (a code is a small integer, exact in float32), so the same bits.
 * Like {@link SimdNibbles}: arrays in and out, no interface calls, no vector kept from one iteration to the next,
 * loaded only where {@link Simd#enabled} holds.
 */
public final class SimdFields {
    /** Values per step: the lanes of one 512-bit register. */
    public static final int STEP = 16;

    private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_512;
    private static final VectorSpecies<Integer> INTS = IntVector.SPECIES_512;
    private static final VectorSpecies<Byte> BYTES = ByteVector.SPECIES_128;

    private SimdFields() {}

    /** {@code words[c] = bytes[c] & 0xFF} for {@code c < count}, 16 at a time, then the rest one by one. */
    public static void widen(byte[] bytes, int[] words, int count) {
        int lanes = count - count % STEP;
        for (int c = 0; c < lanes; c += STEP) {
            ((IntVector) ByteVector.fromArray(BYTES, bytes, c).convertShape(VectorOperators.B2I, INTS, 0)).and(0xFF)
                    .intoArray(words, c);
        }
        for (int c = lanes; c < count; c++) {
            words[c] = bytes[c] & 0xFF;
        }
    }

    /**
     * {@code out[c] = (((words[c] >>> shift) & mask) - zero) * scale} for {@code c < count}, a multiple of
     * {@link #STEP}: one group's zero and scale for the whole row (HQQ's axis 1).
     */
    public static void decodeRow(int[] words, int shift, int mask, float zero, float scale, float[] out, int count) {
        for (int c = 0; c < count; c += STEP) {
            codes(words, c, shift, mask).sub(zero).mul(scale).intoArray(out, c);
        }
    }

    /**
     * {@code out[c] = (((words[c] >>> shift) & mask) - zeros[c]) * scales[c]} for {@code c < count}, a multiple of
     * {@link #STEP}: a zero and scale per column (HQQ's axis 0).
     */
    public static void decodeRow(int[] words, int shift, int mask, float[] zeros, float[] scales, float[] out,
            int count) {
        for (int c = 0; c < count; c += STEP) {
            codes(words, c, shift, mask).sub(FloatVector.fromArray(FLOATS, zeros, c))
                    .mul(FloatVector.fromArray(FLOATS, scales, c)).intoArray(out, c);
        }
    }

    /** The codes of {@code words[c, c + 16)} as floats. */
    private static FloatVector codes(int[] words, int c, int shift, int mask) {
        return (FloatVector) IntVector.fromArray(INTS, words, c).lanewise(VectorOperators.LSHR, shift).and(mask)
                .convert(VectorOperators.I2F, 0);
    }
}
