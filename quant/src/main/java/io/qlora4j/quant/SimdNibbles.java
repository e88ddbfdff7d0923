package io.qlora4j.quant;

import jdk.incubator.vector.ByteVector;
import jdk.incubator.vector.FloatVector;
import jdk.incubator.vector.IntVector;
import jdk.incubator.vector.VectorOperators;
import jdk.incubator.vector.VectorShuffle;
import jdk.incubator.vector.VectorSpecies;

/**
 * 4-bit codes, two per byte, decoded through a 16-value table per block in SIMD lanes with the JDK's incubating Vector
 * API: each block's table fills one 16-lane register, and every 8 packed bytes become 16 lanes of codes that pick
 * their values from it in one permute ({@code selectFrom}, {@code vpermps} on AVX-512). NF4/FP4 blocks (the first code
 * in the high nibble) look up their codebook times the block's scale ({@link #scaleCodebook}: the same float32
 * multiply as {@link BlockwiseQuantizer#dequantizeBlocks}' scalar loop, so the same bits); GPTQ's 4-bit groups (the
 * first code in the low nibble) their float16-rounded values. AWQ's words, eight codes of eight output rows each,
 * are read a nibble at a time over 16 inputs ({@link #decodeField}), each nibble through its output row's table.
 * With {@link SimdFields}, the only classes that name {@code jdk.incubator.vector}: nothing loads them unless {@link
 * Simd} found the module in the boot layer.
 *
 * <p>Arrays in, arrays out, no interface calls: the code C2 compiles while {@link Simd#warmUpNibbles} runs it is the
 * code every later call runs, whatever buffers and scales its caller has (a call site that met a new class would send
 * this method back to the interpreter, where every vector op allocates). Uses only calls the Vector API has kept
 * from JDK 17 through 25.
 */
public final class SimdNibbles {
    /** Codes per step, and values per table: 8 packed bytes, one register. */
    public static final int STEP = 16;
    /** Bytes {@link #decode} may read past the last block's codes. */
    public static final int CODES_SLACK = 8;

    private static final VectorSpecies<Float> FLOATS = FloatVector.SPECIES_512;
    private static final VectorSpecies<Integer> INTS = IntVector.SPECIES_512;
    private static final VectorSpecies<Byte> BYTES = ByteVector.SPECIES_128;
    /** Each of the first 8 bytes twice: lanes 2k and 2k + 1 take byte k's two nibbles. */
    private static final VectorShuffle<Byte> PAIRS = VectorShuffle.fromOp(BYTES, lane -> lane / 2);
    /** The right shift of each lane when a byte's first code is its high nibble: 4 for even lanes, 0 for odd. */
    private static final IntVector HIGH_FIRST = IntVector.zero(INTS).addIndex(1).and(1).mul(-4).add(4);
    /** The right shift of each lane when a byte's first code is its low nibble: 0 for even lanes, 4 for odd. */
    private static final IntVector LOW_FIRST = IntVector.zero(INTS).addIndex(1).and(1).mul(4);

    private SimdNibbles() {}

    /** Whether this CPU runs 16 float lanes natively (AVX-512): with fewer, the permute is emulated and slower. */
    static boolean native16Lanes() {
        return FloatVector.SPECIES_PREFERRED.length() >= FLOATS.length();
    }

    /** {@code tables[16k + c] = codebook[c] * scales[k]} for blocks {@code k < blocks}, one float32 multiply each. */
    public static void scaleCodebook(float[] codebook, float[] scales, int blocks, float[] tables) {
        for (int k = 0; k < blocks; k++) {
            FloatVector.fromArray(FLOATS, codebook, 0).mul(scales[k]).intoArray(tables, STEP * k);
        }
    }

    /**
     * Writes {@code tables[16k + code]} for every code of blocks {@code k < blocks} to {@code out}, from 0: {@code
     * codes} holds their {@code blocks * blocksize / 2} bytes, a byte's first code in its high nibble ({@code
     * highFirst}) or low one, and {@link #CODES_SLACK} bytes more; {@code blocksize} is a multiple of {@link #STEP}.
     */
    public static void decode(byte[] codes, float[] tables, int blocks, int blocksize, boolean highFirst,
            float[] out) {
        // No vector lives from one loop iteration to the next: C2 may otherwise allocate a box for it on every block.
        for (int k = 0; k < blocks; k++) {
            for (int i = k * blocksize; i < (k + 1) * blocksize; i += STEP) {
                ByteVector pairs = ByteVector.fromArray(BYTES, codes, i / 2).rearrange(PAIRS);
                IntVector nibbles = ((IntVector) pairs.convertShape(VectorOperators.B2I, INTS, 0)).and(0xFF)
                        .lanewise(VectorOperators.LSHR, highFirst ? HIGH_FIRST : LOW_FIRST).and(0xF);
                nibbles.selectFrom(FloatVector.fromArray(FLOATS, tables, STEP * k).reinterpretAsInts())
                        .reinterpretAsFloats().intoArray(out, i);
            }
        }
    }

    /**
     * One 4-bit field of a run of words looked up in one 16-value table: {@code out[at + i] = tables[tableAt +
     * ((words[offset + i] >>> shift) & 0xF)]} for {@code i < count}, a multiple of {@link #STEP}. AWQ decodes a word
     * column this way, each of a word's eight nibbles into the output row it holds.
     */
    public static void decodeField(int[] words, int offset, int shift, float[] tables, int tableAt, float[] out,
            int at, int count) {
        for (int i = 0; i < count; i += STEP) {
            IntVector.fromArray(INTS, words, offset + i).lanewise(VectorOperators.LSHR, shift).and(0xF)
                    .selectFrom(FloatVector.fromArray(FLOATS, tables, tableAt).reinterpretAsInts())
                    .reinterpretAsFloats().intoArray(out, at + i);
        }
    }
}
