package io.qlora4j.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * The SIMD lanes and the scalar loop each against a direct per-element reading of the format: element {@code i}'s
 * code is the high nibble of byte {@code i / 2} when {@code i} is even and its low nibble otherwise, its value the
 * codebook's entry times its block's scale in float32. The quant module's tests run with the Vector API module
 * (pom), on any CPU: without 16 native lanes the JVM emulates them, slower and with the same results.
 */
class SimdNibblesTest {
    @Test
    void testsRunWithTheVectorModule() {
        assertTrue(Simd.moduleLoaded(), "the quant module's tests run with --add-modules " + Simd.MODULE);
    }

    @Test
    void simdLanesAndScalarLoopDecodeEveryElementAsTheFormatReads() {
        Random random = new Random(7);
        for (QuantType type : QuantType.values()) {
            for (int blocksize : new int[] {32, 64, 256, 4096}) {
                for (int numel : new int[] {blocksize, 5 * blocksize, 5 * blocksize + 17, 3 * blocksize + 1}) {
                    int blocks = (numel + blocksize - 1) / blocksize;
                    byte[] packed = new byte[(numel + 1) / 2];
                    random.nextBytes(packed);
                    float[] scales = scales(random, blocks);
                    float[] expected = reference(type.codebook(), packed, scales, blocksize, numel);
                    for (ByteBuffer codes : new ByteBuffer[] {ByteBuffer.wrap(packed), direct(packed)}) {
                        FloatBuffer simd = DecodeChecks.unwritten(numel);
                        int first = BlockwiseQuantizer.decodeSimd(codes, b -> scales[b], type.codebook(), blocksize,
                                numel, simd, 0, blocks);
                        assertEquals(numel / blocksize, first, "whole blocks decoded in lanes");
                        BlockwiseQuantizer.decodeScalar(codes, b -> scales[b], type.codebook(), blocksize, numel,
                                simd, first, blocks);
                        String shape = ", blocksize " + blocksize + ", " + numel;
                        DecodeChecks.assertBits(expected, simd, type + " in lanes" + shape);
                        FloatBuffer scalar = DecodeChecks.unwritten(numel);
                        BlockwiseQuantizer.decodeScalar(codes, b -> scales[b], type.codebook(), blocksize, numel,
                                scalar, 0, blocks);
                        DecodeChecks.assertBits(expected, scalar, type + " scalar" + shape);
                    }
                }
            }
        }
    }

    @Test
    void aRangeOfBlocksWritesThoseBlocksOnly() {
        int blocksize = 64;
        int numel = 10 * blocksize;
        byte[] packed = new byte[numel / 2];
        new Random(3).nextBytes(packed);
        float[] scales = scales(new Random(4), 10);
        float[] expected = reference(QuantType.NF4.codebook(), packed, scales, blocksize, numel);
        FloatBuffer out = DecodeChecks.unwritten(numel);
        assertEquals(7, BlockwiseQuantizer.decodeSimd(ByteBuffer.wrap(packed), b -> scales[b],
                QuantType.NF4.codebook(), blocksize, numel, out, 3, 7));
        for (int i = 0; i < numel; i++) {
            boolean inRange = i >= 3 * blocksize && i < 7 * blocksize;
            assertEquals(Float.floatToRawIntBits(inRange ? expected[i] : DecodeChecks.NOT_WRITTEN),
                    Float.floatToRawIntBits(out.get(i)), "element " + i);
        }
    }

    /**
     * Once warmed up, the kernel is compiled ({@link DecodeChecks#assertCompiledAfterWarmUp}; 352 MB for a million
     * values without the warm-up). Where the CPU has no 16 native lanes the JVM emulates them and allocates, and
     * qlora4j does not use them ({@link Simd#enabled}).
     */
    @Test
    void aWarmedUpKernelAllocatesNothingPerBlock() {
        Assumptions.assumeTrue(Simd.enabled(), Simd.describe());
        int blocksize = 64;
        int numel = 1 << 20;
        ByteBuffer codes = direct(new byte[numel / 2]);
        float[] scales = scales(new Random(5), numel / blocksize);
        FloatBuffer out = DecodeChecks.unwritten(numel);
        DecodeChecks.assertCompiledAfterWarmUp(Simd.warmUpNibbles(), () -> BlockwiseQuantizer.dequantizeBlocks(codes,
                b -> scales[b], QuantType.FP4.codebook(), blocksize, numel, out, 0, numel / blocksize), numel);
    }

    /** Scales of every kind a block can have: ordinary, negative, zero, subnormal, huge and infinite. */
    private static float[] scales(Random random, int blocks) {
        float[] special = {0f, -0f, Float.MIN_VALUE * 3, 3.4e38f, Float.POSITIVE_INFINITY, -1.5f};
        float[] s = new float[blocks];
        for (int b = 0; b < blocks; b++) {
            s[b] = b < special.length && blocks > 8 ? special[b]
                    : (float) (random.nextGaussian() * Math.pow(10, random.nextInt(7) - 4));
        }
        return s;
    }

    private static float[] reference(float[] codebook, byte[] packed, float[] scales, int blocksize, int numel) {
        float[] out = new float[numel];
        for (int i = 0; i < numel; i++) {
            int b = packed[i / 2] & 0xFF;
            int code = i % 2 == 0 ? b >>> 4 : b & 0xF;
            out[i] = codebook[code] * scales[i / blocksize];
        }
        return out;
    }

    private static ByteBuffer direct(byte[] bytes) {
        ByteBuffer b = ByteBuffer.allocateDirect(bytes.length);
        b.put(0, bytes);
        return b;
    }
}
