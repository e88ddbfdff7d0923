package io.qlora4j.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import java.util.Random;
import org.junit.jupiter.api.Test;

class DynamicMapTest {

    @Test
    void signedMapHas256SortedValuesFromMinus099296874ToOne() {
        float[] v = DynamicMap.signed().values();
        assertEquals(256, v.length);
        assertEquals(-0.99296874f, v[0]);
        assertEquals(1.0f, v[255]);
        assertEquals(0.0f, v[127]);
        for (int i = 1; i < 256; i++) {
            assertTrue(v[i - 1] < v[i], "strictly sorted at " + i);
        }
        for (int i = 0; i < 127; i++) {
            assertEquals(-v[254 - i], v[i], "negatives mirror positives at " + i);
        }
    }

    @Test
    void unsignedMapHas256SortedNonNegativeValues() {
        float[] v = DynamicMap.unsigned().values();
        assertEquals(256, v.length);
        assertEquals(0.0f, v[0]);
        assertEquals(1.0f, v[255]);
        for (int i = 1; i < 256; i++) {
            assertTrue(v[i - 1] < v[i], "strictly sorted at " + i);
        }
    }

    /** {@code linspace(0.1, 1, k)[j]} in float64, then cast: the formula by hand. */
    private static float lin(int k, int j) {
        return (float) (0.1 + 0.9 * j / (k - 1));
    }

    @Test
    void signedEntriesMatchTheLinspaceFormulaByHand() {
        float[] v = DynamicMap.signed().values();
        // largest magnitude below 1: exponent 6 (scale 1), k = 65, mean of the last two points
        float top = (lin(65, 63) + lin(65, 64)) / 2f;
        assertEquals(top, v[254]);
        assertEquals(-top, v[0]);
        // smallest magnitude: exponent 0 (scale 1e-6), k = 2, mean of 0.1 and 1.0
        float smallest = (float) 1e-6 * ((lin(2, 0) + lin(2, 1)) / 2f);
        assertEquals(smallest, v[128]);
        assertEquals(-smallest, v[126]);
        // exponent 6 mean j = 16 lies 63 positives above zero: index 128 + 63 + 16
        assertEquals((lin(65, 16) + lin(65, 17)) / 2f, v[207]);
        assertEquals(0.33203125f, v[207]);
        assertEquals(-0.33203125f, v[47]);
    }

    @Test
    void unsignedEntriesMatchTheLinspaceFormulaByHand() {
        float[] v = DynamicMap.unsigned().values();
        // exponent 0 uses k = 2^(0+1) + 1 = 3 points: 0.1, 0.55, 1.0
        assertEquals((float) 1e-6 * ((lin(3, 0) + lin(3, 1)) / 2f), v[1]);
        assertEquals((float) 1e-6 * ((lin(3, 1) + lin(3, 2)) / 2f), v[2]);
        // exponent 6 uses k = 129 points; the top mean sits just below 1.0
        assertEquals((lin(129, 127) + lin(129, 128)) / 2f, v[254]);
    }

    @Test
    void mapsMatchLibtorchBuildingThemWithTorchLinspace() {
        try (NDManager m = NDManager.newBaseManager()) {
            assertArrayEquals(torchMap(m, true), DynamicMap.signed().values());
            assertArrayEquals(torchMap(m, false), DynamicMap.unsigned().values());
        }
    }

    /** create_dynamic_map step by step on libtorch: linspace, means, scale, negate, sort. */
    private static float[] torchMap(NDManager m, boolean signed) {
        NDList parts = new NDList();
        for (int i = 0; i < 7; i++) {
            int k = signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
            NDArray b = m.linspace(0.1f, 1f, k, true);
            NDArray means = b.get("0:-1").add(b.get("1:")).div(2f);
            NDArray scaled = i < 6 ? means.mul((float) Math.pow(10, i - 6)) : means;
            parts.add(scaled);
            if (signed) {
                parts.add(scaled.neg());
            }
        }
        parts.add(m.create(new float[] {0f, 1f}));
        return NDArrays.concat(parts).sort().toFloatArray();
    }

    @Test
    void encodeTiesGoToTheEvenCodeOfThePair() {
        DynamicMap map = DynamicMap.signed();
        float[] v = map.values();
        // bitsandbytes' dQuantize ends its binary search on an even index p and compares with
        // the midpoint towards the neighbour, keeping p on equality
        assertEquals(252, map.encode((v[252] + v[253]) * 0.5f));
        assertEquals(254, map.encode((v[253] + v[254]) * 0.5f));
        assertEquals(254, map.encode((v[254] + v[255]) * 0.5f));
        assertEquals(253, map.encode(Math.nextUp((v[252] + v[253]) * 0.5f)));
        assertEquals(253, map.encode(Math.nextDown((v[253] + v[254]) * 0.5f)));
    }

    @Test
    void encodeFindsTheNearestEntry() {
        Random rnd = new Random(3);
        for (DynamicMap map : new DynamicMap[] {DynamicMap.signed(), DynamicMap.unsigned()}) {
            float[] v = map.values();
            for (int i = 0; i < 256; i++) {
                assertEquals(i, map.encode(v[i]), "entry " + i);
            }
            for (int t = 0; t < 20000; t++) {
                float x = (float) (v[0] + (1 - v[0]) * Math.pow(rnd.nextDouble(), 3));
                int best = 0;
                for (int i = 1; i < 256; i++) {
                    if (Math.abs(x - (double) v[i]) < Math.abs(x - (double) v[best])) {
                        best = i;
                    }
                }
                int got = map.encode(x);
                assertTrue(got == best || Math.abs(x - (double) v[got]) == Math.abs(x - (double) v[best])
                        || isFloatMidpoint(x, v, Math.min(got, best)), "x=" + x + " got " + got + " best " + best);
            }
            assertEquals(0, map.encode(-1.0f));
            assertEquals(255, map.encode(1.0f));
        }
        assertEquals(127, DynamicMap.signed().encode(0f));
        assertEquals(0, DynamicMap.unsigned().encode(0f));
    }

    /** x is the float32 midpoint of entries i and i+1, where the rounded midpoint may favour either side. */
    private static boolean isFloatMidpoint(float x, float[] v, int i) {
        return i < 255 && x == (v[i] + v[i + 1]) * 0.5f;
    }

    @Test
    void decodeReturnsTheEntryAndRejectsCodesOutside0To255() {
        DynamicMap map = DynamicMap.signed();
        assertEquals(1.0f, map.decode(255));
        assertEquals(-0.99296874f, map.decode(0));
        assertThrows(IllegalArgumentException.class, () -> map.decode(256));
        assertThrows(IllegalArgumentException.class, () -> map.decode(-1));
    }
}
