package io.qlora4j.optim;

import io.qlora4j.quant.DynamicMap;

/**
 * The nearest-entry code of a sorted 256-entry map, giving exactly what {@link
 * DynamicMap#encode} (bitsandbytes' binary search) gives, faster: the code is the number of
 * midpoints between neighbouring entries below the value, a value exactly on a midpoint taking the
 * even code of the pair, and NaN code 0. A table over the top 16 bits of the value's order-keyed
 * bits gives the count below each bucket, so a lookup scans at most a few midpoints.
 */
final class MapEncoder {

    private final float[] midpoints = new float[255];
    private final short[] below = new short[1 << 16];

    MapEncoder(float[] table) {
        for (int k = 0; k < midpoints.length; k++) {
            midpoints[k] = (table[k] + table[k + 1]) * 0.5f;
        }
        int count = 0;
        for (int bucket = 0; bucket < below.length; bucket++) {
            int start = (bucket - (1 << 15)) << 16;
            while (count < midpoints.length && orderKey(midpoints[count]) < start) {
                count++;
            }
            below[bucket] = (short) count;
        }
    }

    /** The code of {@code x}, a value already scaled into the map's range. */
    int encode(float x) {
        if (x != x) {
            return 0;
        }
        int code = below[(orderKey(x) >> 16) + (1 << 15)];
        while (code < midpoints.length && midpoints[code] < x) {
            code++;
        }
        if (code < midpoints.length && midpoints[code] == x && (code & 1) == 1) {
            code++;
        }
        return code;
    }

    /** The float's bits as an int that orders as the floats do (NaN aside). */
    private static int orderKey(float x) {
        int bits = Float.floatToRawIntBits(x);
        return bits ^ ((bits >> 31) & 0x7FFFFFFF);
    }
}
