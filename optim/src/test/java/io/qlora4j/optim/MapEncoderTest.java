package io.qlora4j.optim;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.qlora4j.quant.DynamicMap;
import java.util.Random;
import org.junit.jupiter.api.Test;

class MapEncoderTest {

    private static void assertSameAsBinarySearch(DynamicMap map, MapEncoder encoder, float x) {
        assertEquals(map.encode(x), encoder.encode(x), "x = " + x);
    }

    @Test
    void givesBitsandbytesBinarySearchCodeAtEveryEntryMidpointAndTheirNeighbours() {
        for (DynamicMap map : new DynamicMap[] {DynamicMap.signed(), DynamicMap.unsigned()}) {
            float[] table = map.values();
            MapEncoder encoder = new MapEncoder(table);
            for (int k = 0; k < 256; k++) {
                float[] points = {table[k], k < 255 ? (table[k] + table[k + 1]) * 0.5f : 1f};
                for (float point : points) {
                    assertSameAsBinarySearch(map, encoder, point);
                    assertSameAsBinarySearch(map, encoder, Math.nextUp(point));
                    assertSameAsBinarySearch(map, encoder, Math.nextDown(point));
                }
            }
            for (float special : new float[] {0f, -0f, -1f, 1f, Float.NaN, Float.MIN_VALUE,
                    -Float.MIN_VALUE}) {
                assertSameAsBinarySearch(map, encoder, special);
            }
        }
    }

    @Test
    void givesBitsandbytesBinarySearchCodeForRandomValuesOfEveryMagnitude() {
        Random random = new Random(3);
        MapEncoder signed = new MapEncoder(DynamicMap.signed().values());
        MapEncoder unsigned = new MapEncoder(DynamicMap.unsigned().values());
        for (int i = 0; i < 200_000; i++) {
            float x = (float) ((2 * random.nextDouble() - 1) * Math.pow(10, -random.nextInt(9)));
            assertSameAsBinarySearch(DynamicMap.signed(), signed, x);
            assertSameAsBinarySearch(DynamicMap.unsigned(), unsigned, Math.abs(x));
        }
    }
}
