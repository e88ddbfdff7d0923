package io.qlora4j.optim;

import io.qlora4j.quant.DynamicMap;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.stream.IntStream;

/**
 * bitsandbytes' blockwise 8-bit coding of optimizer state ({@code kOptimizer8bit2StateBlockwise}):
 * blocks of {@value #BLOCK} consecutive elements, each with a float32 absmax (the largest |x| of
 * the block after the update) and one code per element, the nearest entry of a 256-entry dynamic
 * map to {@code x / absmax}, ties to the even code as in bitsandbytes' {@code quantize_2D}.
 *
 * <p>Signed state (the first moment) also gets bitsandbytes' sign-flip nudge: when the chosen
 * entry's sign bit differs from the value's, the code moves one step toward the value's sign
 * ({@code +1} for a positive value, else {@code -1}, wrapping as an unsigned byte). In practice
 * this sends small negative values that round to the map's {@code 0.0} (code 127) to the smallest
 * negative entry (code 126) instead, so a moment never loses its sign; and in an all-zero block,
 * where {@code 0 / 0} is NaN and lands on code 0 ({@code -0.99296874}), it gives code 255 —
 * either way the block decodes to zero through its zero absmax. The unsigned second moment is
 * never nudged.
 *
 * <p>Differences from the CUDA kernel, all in rare last-bit cases: the scale is an exact float32
 * division where CUDA uses {@code __fdividef} (within 2 ulp); the padding of a partial last
 * block does not take part in its absmax (the kernel pads codes with 128/0, whose tiny decoded
 * values could only matter for a block whose real values are all zero).
 */
final class BlockwiseStateCodec {

    /** Elements per block, each with one float32 absmax, as bitsandbytes' 8-bit optimizers. */
    static final int BLOCK = 256;

    /** Pages of at least this many elements are coded on all cores, block-parallel. */
    private static final int PARALLEL_ELEMENTS = 1 << 16;

    private static final float[] SIGNED_TABLE = DynamicMap.signed().values();
    private static final float[] UNSIGNED_TABLE = DynamicMap.unsigned().values();
    private static final MapEncoder SIGNED_ENCODER = new MapEncoder(SIGNED_TABLE);
    private static final MapEncoder UNSIGNED_ENCODER = new MapEncoder(UNSIGNED_TABLE);

    private BlockwiseStateCodec() {}

    /** The number of blocks of {@code elements} elements, the last one possibly partial. */
    static int blocks(int elements) {
        return (elements + BLOCK - 1) / BLOCK;
    }

    /**
     * Decodes {@code out.length} values: {@code out[i] = table[codes[i]] * absmax[i / 256]}, read
     * from the buffers' absolute index 0 on.
     */
    static void decode(ByteBuffer codes, FloatBuffer absmax, float[] table, float[] out) {
        eachBlock(out.length).forEach(block -> {
            float scale = absmax.get(block);
            int end = Math.min(out.length, (block + 1) * BLOCK);
            for (int i = block * BLOCK; i < end; i++) {
                out[i] = table[codes.get(i) & 0xFF] * scale;
            }
        });
    }

    /**
     * Encodes {@code values} block by block into {@code codes} and {@code absmax} at absolute index
     * 0 on, with the signed map and the sign-flip nudge (first moment) or the unsigned map.
     */
    static void encode(float[] values, boolean signed, ByteBuffer codes, FloatBuffer absmax) {
        float[] table = signed ? SIGNED_TABLE : UNSIGNED_TABLE;
        MapEncoder map = signed ? SIGNED_ENCODER : UNSIGNED_ENCODER;
        eachBlock(values.length).forEach(block -> {
            int start = block * BLOCK;
            int end = Math.min(values.length, start + BLOCK);
            // CUDA's fmaxf from -FLT_MAX: a NaN never becomes the maximum
            float max = -Float.MAX_VALUE;
            for (int i = start; i < end; i++) {
                float magnitude = Math.abs(values[i]);
                if (magnitude > max) {
                    max = magnitude;
                }
            }
            absmax.put(block, max);
            for (int i = start; i < end; i++) {
                float x = values[i];
                int code = map.encode(x / max);
                if (signed && signBit(table[code]) != signBit(x)) {
                    code = (code + (x > 0f ? 1 : -1)) & 0xFF;
                }
                codes.put(i, (byte) code);
            }
        });
    }

    /** The blocks of a page of {@code elements}, in parallel for large pages. */
    private static IntStream eachBlock(int elements) {
        IntStream blocks = IntStream.range(0, blocks(elements));
        return elements >= PARALLEL_ELEMENTS ? blocks.parallel() : blocks;
    }

    /** The signed map's table (index = code), shared; callers must not modify it. */
    static float[] signedTable() {
        return SIGNED_TABLE;
    }

    /** The unsigned map's table (index = code), shared; callers must not modify it. */
    static float[] unsignedTable() {
        return UNSIGNED_TABLE;
    }

    private static boolean signBit(float x) {
        return Float.floatToRawIntBits(x) < 0;
    }
}
