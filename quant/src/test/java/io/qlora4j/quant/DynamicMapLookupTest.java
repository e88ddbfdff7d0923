package io.qlora4j.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

/** The bucket table behind {@link DynamicMap#encode} against the binary search it tabulates. */
class DynamicMapLookupTest {
    @Test
    void tableAgreesWithTheSearchAroundEveryMidpointAndAcrossAllFloats() {
        for (DynamicMap map : new DynamicMap[] {DynamicMap.signed(), DynamicMap.unsigned()}) {
            float[] v = map.values();
            for (int p = 0; p + 1 < v.length; p++) {
                float mid = (v[p] + v[p + 1]) * 0.5f;
                for (float x : new float[] {mid, Math.nextDown(mid), Math.nextUp(mid), v[p], -mid, -v[p]}) {
                    assertEquals(map.search(x), map.encode(x), "x = " + x);
                }
            }
            // every 4099th float bit pattern (odd stride: every bucket offset and sign), NaN and infinities included
            for (long bits = Integer.MIN_VALUE; bits <= Integer.MAX_VALUE; bits += 4099) {
                float x = Float.intBitsToFloat((int) bits);
                assertEquals(map.search(x), map.encode(x), "bits " + Long.toHexString(bits));
            }
        }
    }
}
