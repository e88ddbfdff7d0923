package io.qlora4j.quant.hqq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.quant.FloatSource;
import java.io.IOException;
import java.io.InputStream;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * HQQ's CPU float32 quantization. The vectors of {@code float32-vectors.json} were derived with
 * {@code derive_vectors.py} (next to it): a numpy float32 transcription, written for these tests, of hqq 0.2.8's
 * {@code Quantizer.quantize} and {@code optimize_weights_proximal_legacy} with torch's CPU reduction order; the
 * weights come from a 32-bit LCG both sides compute, exact in float32.
 */
class HqqQuantizerTest {

    /** The same exact-float LCG weights as derive_vectors.py's {@code lcg_weights}. */
    static float[] lcgWeights(int n, long seed, int exponent) {
        long x = seed & 0xFFFFFFFFL;
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            x = (1664525L * x + 1013904223L) & 0xFFFFFFFFL;
            long u1 = x >>> 9;
            x = (1664525L * x + 1013904223L) & 0xFFFFFFFFL;
            long u2 = x >>> 9;
            out[i] = (float) ((u1 + u2 - (1L << 23)) * Math.pow(2, -exponent));
        }
        return out;
    }

    @Test
    void codesScalesAndZerosEqualTheFloat32TranscriptionBitForBit() throws IOException {
        JsonNode cases;
        try (InputStream in = getClass().getResourceAsStream("float32-vectors.json")) {
            cases = new ObjectMapper().readTree(in).get("cases");
        }
        int checked = 0;
        for (JsonNode c : cases) {
            long[] shape = {c.get("shape").get(0).asLong(), c.get("shape").get(1).asLong()};
            int nbits = c.get("nbits").asInt();
            String what = c.get("name").asText() + " " + nbits + "-bit";
            float[] w = lcgWeights((int) (shape[0] * shape[1]), c.get("seed").asLong(), c.get("exponent").asInt());
            for (int threads : new int[] {1, 2}) {
                HqqTensor t = HqqQuantizer.builder(nbits).optGroupSize(c.get("groupSize").asInt())
                        .optAxis(c.get("axis").asInt()).optThreads(threads).build().quantize(w, shape);
                assertArrayEquals(hexBytes(c.get("codes").asText()), t.codes(), what + " codes");
                assertArrayEquals(ints(c.get("scale")), bits(t.scale()), what + " scale");
                assertArrayEquals(ints(c.get("zero")), bits(t.zero()), what + " zero");
            }
            checked++;
        }
        assertEquals(30, checked);
    }

    @Test
    void largeTensorsMatchTheSerialTranscriptionThroughTheFastPath() throws Exception {
        // 65536 elements: the stop test sums errors in double (torch splits such sums over its threads), the
        // steps skip the per-element division unless an error is large enough to shrink (the second case)
        JsonNode cases;
        try (InputStream in = getClass().getResourceAsStream("float32-large.json")) {
            cases = new ObjectMapper().readTree(in).get("cases");
        }
        for (JsonNode c : cases) {
            int nbits = c.get("nbits").asInt();
            long[] shape = {c.get("shape").get(0).asLong(), c.get("shape").get(1).asLong()};
            float[] w = lcgWeights((int) (shape[0] * shape[1]), c.get("seed").asLong(), c.get("exponent").asInt());
            HqqTensor t = HqqQuantizer.builder(nbits).build().quantize(w, shape);
            String what = c.get("name").asText() + " " + nbits + "-bit";
            assertEquals(c.get("codesSha256").asText(), sha256(t.codes()), what + " codes");
            assertEquals(c.get("scaleSha256").asText(), sha256(floatBytes(t.scale())), what + " scale");
            assertEquals(c.get("zeroSha256").asText(), sha256(floatBytes(t.zero())), what + " zero");
        }
    }

    @Test
    void twoBitWithoutTheSolverCodesAndPacksTheHandDerivedVector() {
        // w*1.5 + 1.5 = [0, .75, 1.5, 2.25, 3, 1.875, 1.125, 2.625] rounds half to even to [0,1,2,2,3,2,1,3]
        float[] w = {-1f, -0.5f, 0f, 0.5f, 1f, 0.25f, -0.25f, 0.75f};
        HqqTensor t = HqqQuantizer.builder(2).optGroupSize(8).optOptimize(false).build().quantize(w, new long[] {8, 1});
        assertArrayEquals(new byte[] {0, 1, 2, 2, 3, 2, 1, 3}, t.codes());
        assertArrayEquals(new byte[] {0x2D, 0x6B}, t.packed());
        assertArrayEquals(new float[] {1f / 1.5f}, t.scale());
        assertArrayEquals(new float[] {1.5f}, t.zero());
    }

    @Test
    void solverMovesTheZeroToTheMeanAndStopsWhenTheErrorStopsFalling() {
        // the same weights times 2^-7: scale 192, zero 1.5; the solver's first step moves the zero to
        // mean([1.5, 1.75, 2, 1.25, 1.5, 1.625, 1.375, 1.875]) = 1.609375, the codes stay, the mean error
        // (1.625/8 units either way) does not fall, so it stops there, keeping that zero
        float[] w = {-1f, -0.5f, 0f, 0.5f, 1f, 0.25f, -0.25f, 0.75f};
        for (int i = 0; i < w.length; i++) {
            w[i] *= 0x1p-7f;
        }
        HqqTensor t = HqqQuantizer.builder(2).optGroupSize(8).build().quantize(w, new long[] {8, 1});
        assertArrayEquals(new byte[] {0, 1, 2, 2, 3, 2, 1, 3}, t.codes());
        assertArrayEquals(new float[] {1f / 192f}, t.scale());
        assertArrayEquals(new float[] {1.609375f}, t.zero());
    }

    @Test
    void threeBitGridAlongAxisOneIsExact() {
        float[] w = new float[8];
        for (int i = 0; i < 8; i++) {
            w[i] = 0.25f * i;
        }
        HqqTensor t = HqqQuantizer.builder(3).optGroupSize(8).optAxis(1).build().quantize(w, new long[] {1, 8});
        assertArrayEquals(new byte[] {0, 1, 2, 3, 4, 5, 6, 7}, t.codes());
        assertArrayEquals(new float[] {0.25f}, t.scale());
        assertArrayEquals(new float[] {0f}, t.zero());
        assertArrayEquals(w, t.dequantize());
        // one grouped row padded to ten: word c holds code c << 27, little-endian
        for (int c = 0; c < 8; c++) {
            int word = (t.packed()[4 * c] & 0xFF) | (t.packed()[4 * c + 1] & 0xFF) << 8
                    | (t.packed()[4 * c + 2] & 0xFF) << 16 | (t.packed()[4 * c + 3] & 0xFF) << 24;
            assertEquals(c << 27, word);
        }
    }

    @Test
    void fourBitRoundsTheInitialZeroAndOtherWidthsDoNot() {
        // min -0.3, max 0.7: scale 15 (4-bit) or 3 (2-bit); zero -min*scale = 4.5 -> 4 (half to even) at 4 bits only
        float[] w = {-0.3f, 0.7f, 0f, 0.1f, 0.2f, 0.3f, 0.4f, 0.5f};
        HqqTensor four = HqqQuantizer.builder(4).optGroupSize(8).optOptimize(false).build().quantize(w, new long[] {8, 1});
        HqqTensor two = HqqQuantizer.builder(2).optGroupSize(8).optOptimize(false).build().quantize(w, new long[] {8, 1});
        assertEquals(4f, four.zero()[0]);
        assertEquals(-(-0.3f) * ((1f / (0.7f - -0.3f)) * 3f), two.zero()[0]);
        assertTrue(two.zero()[0] != Math.rint(two.zero()[0]));
    }

    @Test
    void aConstantGroupTakesScaleOneAndDequantizesExactly() {
        float[] w = new float[16];
        java.util.Arrays.fill(w, 0, 8, 0.375f);
        java.util.Arrays.fill(w, 8, 16, -2f);
        HqqTensor t = HqqQuantizer.builder(4).optGroupSize(8).optAxis(1).build().quantize(w, new long[] {2, 8});
        assertArrayEquals(new float[] {1f, 1f}, t.scale());
        assertArrayEquals(w, t.dequantize());
    }

    @Test
    void streamedSourceGivesTheSameTensorAsAnArray() {
        float[] w = lcgWeights(64 * 3000, 11, 27);
        long[] shape = {64 * 30, 100};
        HqqQuantizer q = HqqQuantizer.builder(4).build();
        FloatSource<RuntimeException> source = (offset, dest, pos, count) ->
                System.arraycopy(w, (int) offset, dest, pos, count);
        assertEquals(q.quantize(w, shape), q.quantize(source, shape));
    }

    @Test
    void largeTensorsAgreeWithSerialSummationWhereItMatters() {
        // above 32768 elements the stop test sums in double; codes must not depend on the thread count
        float[] w = lcgWeights(256 * 256, 21, 29);
        long[] shape = {256, 256};
        HqqTensor one = HqqQuantizer.builder(4).optThreads(1).build().quantize(w, shape);
        HqqTensor two = HqqQuantizer.builder(4).optThreads(2).build().quantize(w, shape);
        assertEquals(one, two);
    }

    @Test
    void dequantizationErrorShrinksWithBits() {
        Random rnd = new Random(3);
        float[] w = new float[128 * 64];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (rnd.nextGaussian() * 0.02);
        }
        double previous = Double.POSITIVE_INFINITY;
        for (int bits : new int[] {1, 2, 3, 4, 5, 6, 8}) {
            float[] back = HqqQuantizer.builder(bits).build().quantize(w, new long[] {128, 64}).dequantize();
            double err = 0;
            for (int i = 0; i < w.length; i++) {
                err += (w[i] - back[i]) * (w[i] - back[i]);
            }
            assertTrue(err < previous, bits + "-bit error " + err + " not below " + previous);
            previous = err;
        }
    }

    @Test
    void refusesShapesThatDoNotGroupOrPack() {
        HqqQuantizer q = HqqQuantizer.builder(4).build();
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> q.quantize(new float[96], new long[] {96}));
        assertTrue(e.getMessage().contains("group size 64"), e.getMessage());
        // axis 1: 3 groups of 8 cannot pair up for 4-bit packing
        e = assertThrows(IllegalArgumentException.class,
                () -> HqqQuantizer.builder(4).optGroupSize(8).optAxis(1).build().quantize(new float[24], new long[] {3, 8}));
        assertTrue(e.getMessage().contains("4bit_u8"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> HqqQuantizer.builder(7).build());
        assertTrue(e.getMessage().contains("7-bit"), e.getMessage());
        e = assertThrows(IllegalArgumentException.class, () -> HqqQuantizer.builder(4).optGroupSize(12).build());
        assertTrue(e.getMessage().contains("multiple of 8"), e.getMessage());
    }

    private static String sha256(byte[] data) throws java.security.NoSuchAlgorithmException {
        return java.util.HexFormat.of().formatHex(java.security.MessageDigest.getInstance("SHA-256").digest(data));
    }

    private static byte[] floatBytes(float[] values) {
        java.nio.ByteBuffer b = java.nio.ByteBuffer.allocate(4 * values.length).order(java.nio.ByteOrder.LITTLE_ENDIAN);
        b.asFloatBuffer().put(values);
        return b.array();
    }

    private static byte[] hexBytes(String hex) {
        byte[] out = new byte[hex.length() / 2];
        for (int i = 0; i < out.length; i++) {
            out[i] = (byte) Integer.parseInt(hex.substring(2 * i, 2 * i + 2), 16);
        }
        return out;
    }

    private static int[] ints(JsonNode array) {
        int[] out = new int[array.size()];
        for (int i = 0; i < out.length; i++) {
            out[i] = array.get(i).asInt();
        }
        return out;
    }

    static int[] bits(float[] x) {
        int[] out = new int[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = Float.floatToRawIntBits(x[i]);
        }
        return out;
    }
}
