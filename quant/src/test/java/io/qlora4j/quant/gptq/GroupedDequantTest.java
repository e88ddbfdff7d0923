package io.qlora4j.quant.gptq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.quant.QuantFormatException;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The worked examples of GPTQ and AWQ packing and dequantization, derived by hand from the upstream packers. */
class GroupedDequantTest {
    /** fp16(0.0123) = 0x224C = 1612 / 2^17. */
    private static final float S_0123 = 1612f / 131072f;

    private static float[] decode(GptqTensor t) {
        try (NDManager m = NDManager.newBaseManager()) {
            return decode(NdGroupedTensor.upload(t, m), t.dequantize(), t.outFeatures(), t.inFeatures());
        }
    }

    private static float[] decode(AwqTensor t) {
        try (NDManager m = NDManager.newBaseManager()) {
            return decode(NdGroupedTensor.upload(t, m), t.dequantize(), t.outFeatures(), t.inFeatures());
        }
    }

    /** The weight as the device ops give it, checked against the host's and Java's decodings on the device. */
    private static float[] decode(NdGroupedTensor nd, float[] host, int out, int in) {
        try (nd; NDArray w = nd.dequantizeOnDevice(DataType.FLOAT32); NDArray owned = nd.dequantize(DataType.FLOAT32)) {
            assertEquals(new Shape(out, in), w.getShape());
            // assertArrayEquals compares floats by their bits
            assertArrayEquals(host, w.toFloatArray(), "host and device dequantization");
            assertArrayEquals(w.toFloatArray(), owned.toFloatArray(), "Java's decoding into an array of its own");
            try (NDArray scratch = nd.dequantizeTransient(DataType.FLOAT32)) {
                assertEquals(w.getShape(), scratch.getShape());
                assertArrayEquals(w.toFloatArray(), scratch.toFloatArray(), "Java's decoding into the scratch buffer");
            }
            return w.toFloatArray();
        }
    }

    private static int[] filled(int n, int word) {
        int[] a = new int[n];
        Arrays.fill(a, word);
        return a;
    }

    @Test
    void fourBitV1SymmetricRoundsTheProductOnceToFloat16() throws QuantFormatException {
        // in 32, out 8, group 8; every column word 0x76543210 (rows 0..7 codes 0..7) except out 1: 0xFEDCBA98
        int[] qweight = filled(4 * 8, 0x76543210);
        for (int r = 0; r < 4; r++) {
            qweight[r * 8 + 1] = 0xFEDCBA98;
        }
        GptqTensor t = GptqTensor.fromCheckpoint(4, 32, 8, 8, qweight, filled(4, 0x77777777), filledF(4 * 8, S_0123),
                null, true);
        float[] w = decode(t);
        float[] row0 = {-0.098388671875f, -0.0860595703125f, -0.07379150390625f, -0.061492919921875f,
            -0.0491943359375f, -0.036895751953125f, -0.02459716796875f, -0.012298583984375f};
        assertArrayEquals(row0, Arrays.copyOfRange(w, 0, 8));
        // out 1 holds codes 8..15: 0, s, ..., fp16(7 s) = 0.0860595703125 (the tie -0.086090087890625 goes to even)
        assertEquals(0f, w[32]);
        assertEquals(0.012298583984375f, w[33]);
        assertEquals(0.0860595703125f, w[39]);
    }

    private static float[] filledF(int n, float v) {
        float[] a = new float[n];
        Arrays.fill(a, v);
        return a;
    }

    @Test
    void threeBitFieldsStraddleWordsAndV1ZerosGainOne() throws QuantFormatException {
        // 32 rows with codes k % 8 pack to 0x88FAC688, 0xC688FAC6, 0xFAC688FA; sym v1 zero fields 3 -> z = 4
        int out = 32;
        int[] qweight = new int[3 * out];
        int[] words = {0x88FAC688, 0xC688FAC6, 0xFAC688FA};
        for (int r = 0; r < 3; r++) {
            Arrays.fill(qweight, r * out, (r + 1) * out, words[r]);
        }
        int[] qzeros = {0xDB6DB6DB, 0xB6DB6DB6, 0x6DB6DB6D};
        GptqTensor t = GptqTensor.fromCheckpoint(3, 32, out, -1, qweight, qzeros, filledF(out, 0.25f), null, true);
        assertEquals(2, t.code(10, 0));
        assertEquals(5, t.code(21, 5));
        float[] w = decode(t);
        for (int o = 0; o < out; o++) {
            for (int i = 0; i < 32; i++) {
                assertEquals((i % 8 - 4) * 0.25f, w[o * 32 + i], "o " + o + " i " + i);
            }
        }
    }

    @Test
    void twoAndEightBitWordsReadLowFieldFirst() throws QuantFormatException {
        // 2-bit 0xE4E4E4E4 = codes 0,1,2,3 repeated; v1 sym zero word 0x55555555 -> z = 2
        GptqTensor two = GptqTensor.fromCheckpoint(2, 32, 16, 32, filled(2 * 16, 0xE4E4E4E4), filled(1, 0x55555555),
                filledF(16, 0.5f), null, true);
        float[] w2 = decode(two);
        assertArrayEquals(new float[] {-1f, -0.5f, 0f, 0.5f, -1f}, Arrays.copyOfRange(w2, 0, 5));
        // 8-bit 0x03020100 = codes 0,1,2,3; v1 sym zero word 0x7F7F7F7F -> z = 128; s = fp16(0.001) = 0x1419
        float s = 1049f / 1048576f;
        GptqTensor eight = GptqTensor.fromCheckpoint(8, 32, 4, 32, filled(8 * 4, 0x03020100), filled(1, 0x7F7F7F7F),
                filledF(4, s), null, true);
        float[] w8 = decode(eight);
        assertArrayEquals(new float[] {-0.1280517578125f, -0.1270751953125f, -0.1260986328125f, -0.125f},
                Arrays.copyOfRange(w8, 0, 4));
    }

    @Test
    void asymmetricV1ZerosFollowGptqmodelsWordAdd() throws QuantFormatException {
        // AutoGPTQ's 0xFFFFFFF2 (true zeros 3,0,5,...) + 0x11111111 = 0x11111103: 3, 0, 1, 1, 1, 1, 1, 1
        GptqTensor v1 = GptqTensor.fromCheckpoint(4, 32, 8, 32, filled(4 * 8, 0), new int[] {0xFFFFFFF2},
                filledF(8, 1f), null, true);
        assertArrayEquals(new int[] {3, 0, 1, 1, 1, 1, 1, 1}, v1.zeros());
        GptqTensor v2 = GptqTensor.fromCheckpoint(4, 32, 8, 32, filled(4 * 8, 0), new int[] {0x55555503},
                filledF(8, 1f), null, false);
        assertArrayEquals(new int[] {3, 0, 5, 5, 5, 5, 5, 5}, v2.zeros());
    }

    @Test
    void actOrderGroupIndexPicksEachColumnsScaleAndZero() throws QuantFormatException {
        // desc_act: g_idx = position of the column in the permutation / group size (worked example, twice over)
        int[] half = {0, 0, 1, 0, 0, 1, 1, 0, 1, 0, 1, 1, 0, 1, 1, 0};
        int[] gIdx = new int[32];
        for (int i = 0; i < 32; i++) {
            gIdx[i] = half[i % 16] + (i < 16 ? 0 : 2);
        }
        int out = 8;
        float[] scales = new float[4 * out];
        for (int g = 0; g < 4; g++) {
            Arrays.fill(scales, g * out, (g + 1) * out, 1f / (1 << g));
        }
        // v2 zeros: group g has zero g for every output
        int[] qzeros = {0x00000000, 0x11111111, 0x22222222, 0x33333333};
        GptqTensor t = GptqTensor.fromCheckpoint(4, 32, out, 8, filled(4 * out, 0x76543210), qzeros, scales, gIdx,
                false);
        float[] w = decode(t);
        for (int i = 0; i < 32; i++) {
            int g = gIdx[i];
            assertEquals((i % 8 - g) / (float) (1 << g), w[i], "column " + i);
        }
        int[] bad = gIdx.clone();
        bad[5] = 4;
        QuantFormatException e = assertThrows(QuantFormatException.class, () -> GptqTensor.fromCheckpoint(4, 32, out,
                8, filled(4 * out, 0), qzeros, scales, bad, false));
        assertEquals("g_idx[5] = 4 names no group (the checkpoint has 4)", e.getMessage());
    }

    @Test
    void deviceUnpackAgreesWithTheBitStreamForEveryWidth() throws QuantFormatException {
        Random rnd = new Random(3);
        for (int bits : new int[] {2, 3, 4, 8}) {
            int in = 64;
            int out = 32;
            int[] qweight = new int[in / 32 * bits * out];
            for (int i = 0; i < qweight.length; i++) {
                qweight[i] = rnd.nextInt();
            }
            int[] qzeros = new int[2 * out * bits / 32];
            for (int i = 0; i < qzeros.length; i++) {
                qzeros[i] = rnd.nextInt();
            }
            float[] scales = new float[2 * out];
            for (int i = 0; i < scales.length; i++) {
                scales[i] = 1f / (1 << rnd.nextInt(8));
            }
            GptqTensor t = GptqTensor.fromCheckpoint(bits, in, out, 32, qweight, qzeros, scales, null, false);
            float[] w = decode(t);
            for (int o = 0; o < out; o++) {
                for (int i = 0; i < in; i++) {
                    int g = i / 32;
                    float expected = scales[g * out + o] * (t.code(i, o) - t.zeros()[g * out + o]);
                    assertEquals(expected, w[o * in + i], bits + " bits, o " + o + " i " + i);
                }
            }
        }
    }

    @Test
    void awqNibblesAreInterleaved() {
        // word 0x12345678 holds columns 0..7 = 8,4,7,3,6,2,5,1; zeros word 0x76543210 = 0,4,1,5,2,6,3,7; s = 0.5
        int in = 8;
        AwqTensor t = AwqTensor.fromCheckpoint(in, 8, 8, filled(in, 0x12345678), new int[] {0x76543210},
                filledF(8, 0.5f));
        assertArrayEquals(new int[] {0, 4, 1, 5, 2, 6, 3, 7}, t.zeros());
        float[] w = decode(t);
        float[] column0 = new float[8];
        for (int o = 0; o < 8; o++) {
            column0[o] = w[o * in];
        }
        assertArrayEquals(new float[] {4, 0, 3, -1, 2, -2, 1, -3}, column0);
        // word 0x75316420 holds 0..7 in order; with zeros 8 and s = fp16(0.0123) the GPTQ values come back
        AwqTensor g = AwqTensor.fromCheckpoint(in, 8, 8, filled(in, 0x75316420), new int[] {0x88888888},
                filledF(8, S_0123));
        float[] wg = decode(g);
        assertEquals(-0.098388671875f, wg[0]);
        assertEquals(-0.0860595703125f, wg[in]);
        assertEquals(-0.012298583984375f, wg[7 * in + 1]);
    }

    /** Shapes of one input tile and of several (Java decodes 256 inputs at a time), with a group across two tiles. */
    @Test
    void awqDeviceUnpackAgreesWithTheNibbleRule() {
        Random rnd = new Random(5);
        for (int[] shape : new int[][] {{32, 24, 16}, {608, 16, 32}, {576, 16, 96}}) {
            int in = shape[0];
            int out = shape[1];
            int groupSize = shape[2];
            int groups = in / groupSize;
            int[] qweight = new int[in * out / 8];
            for (int i = 0; i < qweight.length; i++) {
                qweight[i] = rnd.nextInt();
            }
            int[] qzeros = new int[groups * out / 8];
            for (int i = 0; i < qzeros.length; i++) {
                qzeros[i] = rnd.nextInt();
            }
            float[] scales = new float[groups * out];
            for (int i = 0; i < scales.length; i++) {
                scales[i] = 1f / (1 << rnd.nextInt(8));
            }
            AwqTensor t = AwqTensor.fromCheckpoint(in, out, groupSize, qweight, qzeros, scales);
            float[] w = decode(t);
            for (int o = 0; o < out; o++) {
                for (int i = 0; i < in; i++) {
                    int g = i / groupSize;
                    assertEquals(scales[g * out + o] * (t.code(i, o) - t.zeros()[g * out + o]), w[o * in + i],
                            in + " x " + out + ": o " + o + " i " + i);
                }
            }
        }
    }
}
