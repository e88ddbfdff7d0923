package io.qlora4j.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.quant.DynamicMap;
import java.nio.ByteBuffer;
import java.nio.FloatBuffer;
import java.util.Random;
import org.junit.jupiter.api.Test;

class BlockwiseStateCodecTest {

    private static final float[] SIGNED = DynamicMap.signed().values();
    private static final float[] UNSIGNED = DynamicMap.unsigned().values();

    /** Codes and absmax of {@code values}, encoded with the signed (first moment) or unsigned map. */
    private record Coded(int[] codes, float[] absmax) {}

    private static Coded encode(float[] values, boolean signed) {
        ByteBuffer codes = ByteBuffer.allocate(values.length);
        FloatBuffer absmax = FloatBuffer.allocate(BlockwiseStateCodec.blocks(values.length));
        BlockwiseStateCodec.encode(values, signed, codes, absmax);
        int[] out = new int[values.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = codes.get(i) & 0xFF;
        }
        return new Coded(out, absmax.array());
    }

    private static float[] decode(Coded coded, boolean signed) {
        ByteBuffer codes = ByteBuffer.allocate(coded.codes().length);
        for (int i = 0; i < coded.codes().length; i++) {
            codes.put(i, (byte) coded.codes()[i]);
        }
        float[] out = new float[coded.codes().length];
        BlockwiseStateCodec.decode(codes, FloatBuffer.wrap(coded.absmax()),
                signed ? SIGNED : UNSIGNED, out);
        return out;
    }

    /** The index of the entry nearest to x in float64, the lower one on an exact tie. */
    private static int nearest(float[] table, double x) {
        int best = 0;
        for (int i = 1; i < table.length; i++) {
            if (Math.abs(table[i] - x) < Math.abs(table[best] - x)) {
                best = i;
            }
        }
        return best;
    }

    @Test
    void mapsAreTheSorted256EntryDynamicMaps() {
        assertEquals(256, SIGNED.length);
        assertEquals(-0.99296874f, SIGNED[0]);
        assertEquals(0f, SIGNED[127]);
        assertEquals(1f, SIGNED[255]);
        assertEquals(0f, UNSIGNED[0]);
        assertEquals(1f, UNSIGNED[255]);
        for (int i = 1; i < 256; i++) {
            assertTrue(SIGNED[i - 1] < SIGNED[i] && UNSIGNED[i - 1] < UNSIGNED[i], "entry " + i);
        }
    }

    @Test
    void everyMapEntryTimesTheAbsmaxCodesToItsOwnIndexAndDecodesBack() {
        for (boolean signed : new boolean[] {true, false}) {
            float[] table = signed ? SIGNED : UNSIGNED;
            float[] values = new float[256];
            for (int i = 0; i < 256; i++) {
                values[i] = table[i] * 3f;
            }
            Coded coded = encode(values, signed);
            assertArrayEquals(new float[] {3f}, coded.absmax());
            float[] decoded = decode(coded, signed);
            for (int i = 0; i < 256; i++) {
                assertEquals(i, coded.codes()[i], "entry " + i + (signed ? " signed" : " unsigned"));
                assertEquals(table[i] * 3f, decoded[i], 0f);
            }
        }
    }

    @Test
    void codesAreTheNearestEntryWithTiesToTheEvenCode() {
        Random random = new Random(5);
        float[] values = new float[256];
        values[0] = 1f; // absmax 1: values are their own scaled inputs
        for (int i = 1; i < 200; i++) {
            values[i] = (float) ((2 * random.nextDouble() - 1) * Math.pow(10, -random.nextInt(6)));
        }
        // exact midpoints between neighbours: ties go to the even code of the pair
        int[] pairs = {128, 129, 130, 200, 253};
        for (int k = 0; k < pairs.length; k++) {
            values[200 + k] = (SIGNED[pairs[k]] + SIGNED[pairs[k] + 1]) * 0.5f;
        }
        Coded coded = encode(values, true);
        for (int i = 1; i < 200; i++) {
            int expected = nearest(SIGNED, values[i]);
            if (expected == 127 && values[i] < 0) {
                expected = 126; // the sign-flip nudge
            }
            assertEquals(expected, coded.codes()[i], "value " + values[i]);
        }
        for (int k = 0; k < pairs.length; k++) {
            int even = pairs[k] % 2 == 0 ? pairs[k] : pairs[k] + 1;
            assertEquals(even, coded.codes()[200 + k], "midpoint after " + pairs[k]);
        }
    }

    @Test
    void absmaxIsTheLargestMagnitudeOfEach256BlockAndThatElementCodesToAnEndOfTheMap() {
        Random random = new Random(9);
        float[] values = SyntheticRun.gaussian(random, 700, 1.0);
        values[17] = 9f;        // block 0: a positive maximum
        values[300] = -7f;      // block 1: a negative maximum
        values[650] = 5f;       // block 2, partial (188 elements)
        Coded coded = encode(values, true);
        assertArrayEquals(new float[] {9f, 7f, 5f}, coded.absmax());
        assertEquals(255, coded.codes()[17]);
        assertEquals(0, coded.codes()[300]);
        float[] decoded = decode(coded, true);
        assertEquals(9f, decoded[17], 0f);
        assertEquals(-0.99296874f * 7f, decoded[300], 0f);
        for (int i = 0; i < values.length; i++) {
            float absmax = coded.absmax()[i / 256];
            // the coarsest gap of the signed map is 1 - 0.9859375 (near 1), scaled by absmax
            assertEquals(values[i], decoded[i], 0.0079 * absmax, "element " + i);
        }
    }

    @Test
    void signFlipNudgeKeepsSmallNegativeFirstMomentsNegativeButNotSecondMoments() {
        float[] values = new float[256];
        values[0] = 1f;
        values[1] = -1e-9f;
        values[2] = 1e-9f;
        Coded signed = encode(values, true);
        // nearest to -1e-9 is 0.0 (code 127); the nudge moves it to the smallest negative entry
        assertEquals(126, signed.codes()[1]);
        assertTrue(SIGNED[126] < 0);
        assertEquals(127, signed.codes()[2]);
        assertEquals(127, signed.codes()[3]);
        Coded unsigned = encode(values, false);
        assertEquals(0, unsigned.codes()[2]);
        assertEquals(0, unsigned.codes()[3]);
    }

    @Test
    void allZeroBlockCodesAsBitsandbytesAndDecodesToZero() {
        float[] zeros = new float[300];
        zeros[299] = 2f; // a second, non-zero block
        Coded signed = encode(zeros, true);
        Coded unsigned = encode(zeros, false);
        assertEquals(0f, signed.absmax()[0]);
        for (int i = 0; i < 256; i++) {
            // 0 / 0 is NaN, which lands on code 0 (-0.99296874); the nudge turns it into 255
            assertEquals(255, signed.codes()[i]);
            assertEquals(0, unsigned.codes()[i]);
        }
        float[] decodedSigned = decode(signed, true);
        float[] decodedUnsigned = decode(unsigned, false);
        for (int i = 0; i < 256; i++) {
            assertEquals(0f, decodedSigned[i], 0f);
            assertEquals(0f, decodedUnsigned[i], 0f);
        }
        assertEquals(2f, decodedSigned[299], 0f);
    }
}
