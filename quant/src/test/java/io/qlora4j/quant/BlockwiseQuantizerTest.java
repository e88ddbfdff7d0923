package io.qlora4j.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class BlockwiseQuantizerTest {

    /**
     * NF4 decision constants of bitsandbytes' dQuantizeNF4 tree: its decimal literals rounded to
     * the nearest float32 (derived with exact rational arithmetic, not by a float64 detour).
     */
    private static final int[] NF4_MIDPOINT_BITS = {
        0xbf591cd9, 0xbf1c5270, 0xbeeb8480, 0xbeadea76, 0xbe703cec, 0xbe0d38bc, 0xbd3a7871,
        0x3d22faff, 0x3df64863, 0x3e5067e0, 0x3e9582d4, 0x3ec753f9, 0x3f006d03, 0x3f248daf, 0x3f5c89d9,
    };

    /** FP4 magnitude thresholds of dQuantizeFP4 (0.00260417f ... 0.8333333f), ascending. */
    private static final int[] FP4_THRESHOLD_BITS = {
        0x3b2aaab9, 0x3db00000, 0x3e555555, 0x3e955555, 0x3ed55556, 0x3f155550, 0x3f555555,
    };

    /** FP4 3-bit code of each magnitude rank (0, 1/192, 1/6, 1/4, 1/3, 1/2, 2/3, 1). */
    private static final int[] FP4_RANK_CODE = {0, 1, 6, 7, 4, 5, 2, 3};

    private static BlockwiseQuantizer plain(QuantType type, int blocksize) {
        return BlockwiseQuantizer.builder().optType(type).optBlocksize(blocksize).optDoubleQuant(false).build();
    }

    private static byte[] pack(QuantType type, int blocksize, float... data) {
        return plain(type, blocksize).quantize(data, new long[] {data.length}).packed();
    }

    private static byte[] bytes(int... values) {
        byte[] b = new byte[values.length];
        for (int i = 0; i < b.length; i++) {
            b[i] = (byte) values[i];
        }
        return b;
    }

    @Test
    void nf4MidpointTiesRoundToLowerCodeAndNextFloatUpToUpper() {
        for (int i = 0; i < 15; i++) {
            float mid = Float.intBitsToFloat(NF4_MIDPOINT_BITS[i]);
            // absmax 1.0 makes the reciprocal 1.0, so each value is coded unscaled
            byte[] got = pack(QuantType.NF4, 64, 1.0f, mid, Math.nextUp(mid), Math.nextDown(mid));
            assertArrayEquals(bytes(0xF0 | i, (i + 1) << 4 | i), got, "midpoint " + i);
        }
    }

    @Test
    void nf4HandPickedValuesPackHighNibbleFirst() {
        // 0.5 lies between midpoints 0.38931254 and 0.50166345 -> code 12; -0.25 between
        // -0.33967942 and -0.2346074 -> code 4; -1 -> 0; 1 -> 15
        assertArrayEquals(bytes(0xC4, 0x0F), pack(QuantType.NF4, 64, 0.5f, -0.25f, -1.0f, 1.0f));
    }

    @Test
    void fp4ThresholdTiesKeepTheSmallerMagnitude() {
        for (int k = 0; k < 7; k++) {
            float t = Float.intBitsToFloat(FP4_THRESHOLD_BITS[k]);
            int lower = FP4_RANK_CODE[k];
            int upper = FP4_RANK_CODE[k + 1];
            byte[] got = pack(QuantType.FP4, 64, 1.0f, t, Math.nextUp(t), -t, -Math.nextUp(t), 0f);
            // 1.0 is FP4 code 3; negatives carry bit 3
            assertArrayEquals(bytes(0x30 | lower, upper << 4 | 8 | lower, (8 | upper) << 4), got, "threshold " + k);
        }
    }

    @Test
    void fp4FollowsKernelThresholdBelowTheTrueMidpoint() {
        // 0x3f155553 lies between the kernel constant 0.583333f (0x3f155550) and the float32
        // midpoint of 0.5 and 2/3 (0x3f155556): the kernel says 2/3 (code 2), not 0.5 (code 5)
        float x = Float.intBitsToFloat(0x3f155553);
        assertArrayEquals(bytes(0x32), pack(QuantType.FP4, 64, 1.0f, x));
        assertArrayEquals(bytes(0x35), pack(QuantType.FP4, 64, 1.0f, 0.583333f));
    }

    @Test
    void negativeZeroTakesTheCodeOfZero() {
        assertArrayEquals(bytes(0x7F), pack(QuantType.NF4, 64, -0.0f, 1.0f));
        assertArrayEquals(bytes(0x03), pack(QuantType.FP4, 64, -0.0f, 1.0f));
        // a tiny negative in FP4 keeps its sign bit: code 8
        assertArrayEquals(bytes(0x83), pack(QuantType.FP4, 64, -0.001f, 1.0f));
    }

    @Test
    void oddCountPadsTheLowNibbleWithTheCodeOfZero() {
        // bitsandbytes quantizes a padding 0.0 into the last low nibble: NF4 7, FP4 0
        assertArrayEquals(bytes(0xF7), pack(QuantType.NF4, 64, 0.5f));
        assertArrayEquals(bytes(0x30), pack(QuantType.FP4, 64, 0.5f));
        assertArrayEquals(bytes(0x0F, 0xC7), pack(QuantType.NF4, 64, -2f, 2f, 1f));
    }

    @Test
    void partialLastBlockHasItsOwnAbsmax() {
        float[] data = new float[35];
        Arrays.fill(data, 0, 32, 3.0f);
        data[32] = 1.0f;
        data[33] = -0.5f;
        data[34] = 2.0f;
        QuantizedTensor q = plain(QuantType.NF4, 32).quantize(data, new long[] {5, 7});
        assertArrayEquals(new float[] {3.0f, 2.0f}, q.absmax());
        byte[] expected = new byte[18];
        Arrays.fill(expected, 0, 16, (byte) 0xFF); // 3 * (1/3f) rounds to 1.0 -> code 15
        expected[16] = (byte) 0xC4; // 1/2 -> 0.5 -> 12, -0.5/2 -> -0.25 -> 4
        expected[17] = (byte) 0xF7; // 2/2 -> 15, padding 7
        assertArrayEquals(expected, q.packed());
    }

    @Test
    void allZeroBlockStoresTheCodeOfZero() {
        float[] data = new float[64];
        data[32] = 1.0f;
        QuantizedTensor nf4 = plain(QuantType.NF4, 32).quantize(data, new long[] {64});
        QuantizedTensor fp4 = plain(QuantType.FP4, 32).quantize(data, new long[] {64});
        assertEquals(0f, nf4.absmax()[0]);
        for (int i = 0; i < 16; i++) {
            assertEquals((byte) 0x77, nf4.packed()[i]);
            assertEquals((byte) 0x00, fp4.packed()[i]);
        }
        assertEquals((byte) 0xF7, nf4.packed()[16]);
        assertEquals((byte) 0x30, fp4.packed()[16]);
        float[] back = plain(QuantType.NF4, 32).dequantize(nf4);
        for (int i = 0; i < 32; i++) {
            assertEquals(0, Float.floatToRawIntBits(back[i]), "+0.0 at " + i);
        }
    }

    @Test
    void blocksize32SplitsAfterThirtyTwoElements() {
        float[] data = new float[33];
        Arrays.fill(data, 1.0f);
        data[0] = -1.0f;
        data[32] = 0.25f;
        QuantizedTensor q = plain(QuantType.NF4, 32).quantize(data, new long[] {33});
        assertArrayEquals(new float[] {1.0f, 0.25f}, q.absmax());
        assertEquals((byte) 0x0F, q.packed()[0]);
        assertEquals((byte) 0xFF, q.packed()[15]);
        assertEquals((byte) 0xF7, q.packed()[16]); // 0.25 / 0.25 -> 15, not 0.25 -> code 10 (0xA7)
    }

    @Test
    void blocksize4096SplitsAfter4096Elements() {
        float[] data = new float[4097];
        Arrays.fill(data, 1.0f);
        data[0] = -1.0f;
        data[4096] = 0.25f;
        QuantizedTensor q = plain(QuantType.NF4, 4096).quantize(data, new long[] {4097});
        assertArrayEquals(new float[] {1.0f, 0.25f}, q.absmax());
        assertEquals(2049, q.packed().length);
        assertEquals((byte) 0x0F, q.packed()[0]);
        for (int i = 1; i < 2048; i++) {
            assertEquals((byte) 0xFF, q.packed()[i]);
        }
        assertEquals((byte) 0xF7, q.packed()[2048]);
    }

    @Test
    void roundTripErrorIsAtMostHalfTheLargestCodeGapTimesAbsmax() {
        Random rnd = new Random(7);
        float[] data = new float[64 * 50 + 17];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) (rnd.nextGaussian() * 0.02);
        }
        for (QuantType type : QuantType.values()) {
            BlockwiseQuantizer q = plain(type, 64);
            QuantizedTensor t = q.quantize(data, new long[] {data.length});
            float[] back = q.dequantize(t);
            double halfGap = halfLargestGap(type.codebook());
            for (int i = 0; i < data.length; i++) {
                double bound = (halfGap + 1e-6) * t.absmax()[i / 64];
                assertTrue(Math.abs(data[i] - back[i]) <= bound, type + " element " + i);
            }
        }
    }

    private static double halfLargestGap(float[] codebook) {
        double[] sorted = new double[codebook.length];
        for (int i = 0; i < sorted.length; i++) {
            sorted[i] = codebook[i];
        }
        Arrays.sort(sorted);
        double gap = 0;
        for (int i = 1; i < sorted.length; i++) {
            gap = Math.max(gap, sorted[i] - sorted[i - 1]);
        }
        return gap / 2;
    }

    @Test
    void dequantizeMultipliesCodeValueByBlockScale() {
        // codes 0x0F, 0xC7 with absmax 2: -1*2, 1*2, 0.44070983f*2 (code 12), padding dropped
        QuantizedTensor t = new QuantizedTensor(QuantType.NF4, new long[] {3}, 64, bytes(0x0F, 0xC7),
                new float[] {2f}, null);
        assertArrayEquals(new float[] {-2f, 2f, 0.44070982933044434f * 2f}, plain(QuantType.NF4, 64).dequantize(t));
    }

    @Test
    void resultsAreIdenticalForOneAndFourThreads() {
        Random rnd = new Random(11);
        float[] data = new float[(1 << 19) + 33];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) rnd.nextGaussian();
        }
        long[] shape = {data.length};
        for (QuantType type : QuantType.values()) {
            BlockwiseQuantizer one = BlockwiseQuantizer.builder().optType(type).optThreads(1).build();
            BlockwiseQuantizer four = BlockwiseQuantizer.builder().optType(type).optThreads(4).build();
            QuantizedTensor a = one.quantize(data, shape);
            QuantizedTensor b = four.quantize(data, shape);
            assertEquals(a, b);
            assertArrayEquals(one.dequantize(a), four.dequantize(b));
        }
    }

    @Test
    void defaultsAreNf4Blocksize64WithDoubleQuant() {
        QuantizedTensor t = BlockwiseQuantizer.builder().build().quantize(new float[130], new long[] {130});
        assertEquals(QuantType.NF4, t.type());
        assertEquals(64, t.blocksize());
        assertNull(t.absmax());
        assertEquals(3, t.doubleQuant().codes().length);
    }

    @Test
    void unsupportedBlocksizeIsRejectedNamingTheAllowedOnes() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BlockwiseQuantizer.builder().optBlocksize(48));
        assertTrue(e.getMessage().contains("48"), e.getMessage());
        assertTrue(e.getMessage().contains("[32, 64, 128, 256, 512, 1024, 2048, 4096]"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> BlockwiseQuantizer.builder().optThreads(0));
    }

    @Test
    void shapeMustMatchTheData() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> plain(QuantType.NF4, 64).quantize(new float[10], new long[] {3, 4}));
        assertTrue(e.getMessage().contains("[3, 4]"), e.getMessage());
    }
}
