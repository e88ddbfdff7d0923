package io.qlora4j.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * 4-bit codes, two per byte, decoded through a 16-value codebook in SIMD lanes with the JDK's incubating Vector API:
 * per block the codebook times the block's scale fills one 16-lane register (the same float32 multiply as {@link
 * BlockwiseQuantizer#dequantizeBlocks}' scalar loop, so the same bits), and every 8 packed bytes become 16 lanes of
 * codes that pick their values from it in one permute ({@code selectFrom}, {@code vpermps} on AVX-512). The only class
 * that names {@code jdk.incubator.vector}: nothing loads it unless {@link Simd} found the module in the boot layer.
 *
 * <p>Arrays in, arrays out, no interface calls: the code C2 compiles while {@link Simd#warmUp} runs it is the code
 * every later call runs, whatever buffers and scales its caller has (a call site that met a new class would send
 * this method back to the interpreter, where every vector op allocates). Uses only calls the Vector API has kept
 * from JDK 17 through 25.
 */
final class SimdNibbles {
    /** Codes per step: 8 packed bytes. */
    static final int STEP = 16;
    /** Bytes {@link #decode} may read past the last block's codes. */
    static final int CODES_SLACK = 8;

    private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_512;
    private static final VectorSpecies<Integer> INTS = IntVector.SPECIES_512;
    private static final VectorSpecies<Byte> BYTES = ByteVector.SPECIES_128;
    /** Each of the first 8 bytes twice: lanes 2k and 2k + 1 take byte k's high and low nibble. */
    private static final VectorShuffle<Byte> PAIRS = VectorShuffle.fromOp(BYTES, lane -> lane / 2);
    /** The right shift of each lane: 4 for a high nibble (even lanes), 0 for a low one. */
    private static final IntVector NIBBLE_SHIFT = IntVector.zero(INTS).addIndex(1).and(1).mul(-4).add(4);

    private SimdNibbles() {}

    /** Whether this CPU runs 16 float lanes natively (AVX-512): with fewer, the permute is emulated and slower. */
    static boolean native16Lanes() {
        return FloatVector.SPECIES_PREFERRED.length() >= FLOATS.length();
    }

    /**
     * Writes {@code codebook[code] * scales[k]} for every code of blocks {@code k < blocks} to {@code out}, from 0:
     * {@code codes} holds their {@code blocks * blocksize / 2} bytes, the first code in the high nibble, and {@link
     * #CODES_SLACK} bytes more; {@code blocksize} is a multiple of {@link #STEP}; {@code scaled} is 16 ints of room.
     */
    static void decode(byte[] codes, float[] scales, int blocks, int blocksize, float[] codebook, int[] scaled,
            float[] out) {
        // No vector lives from one loop iteration to the next (the scaled codebook goes through an array): C2 may
        // otherwise allocate a box for it on every block.
        for (int k = 0; k < blocks; k++) {
            FloatVector.fromArray(FLOATS, codebook, 0).mul(scales[k]).reinterpretAsInts().intoArray(scaled, 0);
            for (int i = k * blocksize; i < (k + 1) * blocksize; i += STEP) {
                ByteVector pairs = ByteVector.fromArray(BYTES, codes, i / 2).rearrange(PAIRS);
                IntVector nibbles = ((IntVector) pairs.convertShape(VectorOperators.B2I, INTS, 0)).and(0xFF)
                        .lanewise(VectorOperators.LSHR, NIBBLE_SHIFT).and(0xF);
                nibbles.selectFrom(IntVector.fromArray(INTS, scaled, 0)).reinterpretAsFloats().intoArray(out, i);
            }
        }
    }
}
