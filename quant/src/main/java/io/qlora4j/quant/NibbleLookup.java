package io.qlora4j.quant;

/**
 * A 4-bit encode rule in table form, one lookup per value. Floats sharing their top 20 bits
 * (sign, exponent, 11 mantissa bits) form a bucket of relative width under 0.05%, and most
 * buckets lie wholly within one code, which the table gives directly. As the rule is monotone,
 * each code covers the floats from one boundary to the next; a bucket that holds a boundary
 * (NF4's and FP4's lie more than 1% apart, so at most one) is flagged with the rank, in value
 * order, of its lower code, and its values compare with the last float of that rank. Built from
 * the reference rule, the table agrees with it on every float except NaNs whose bits lie within
 * 0xFFF of an infinity's, which take the infinity's code (the NaN of {@code 0 * infinity} is not
 * among them). One MiB per type, built once at class initialization (tens of milliseconds).
 */
final class NibbleLookup {

    /** A 4-bit encode rule for one value already scaled into [-1, 1]. */
    interface Rule {
        int code(float x);
    }

    private static final int SHIFT = 12;
    private static final int BUCKETS = 1 << (32 - SHIFT);

    /** Flags a bucket that holds a boundary; the low bits then hold the lower rank. */
    private static final int SPLIT = 0x80;

    /** Per bucket: its code, or {@link #SPLIT} with the rank of its smallest value. */
    private final byte[] entry = new byte[BUCKETS];

    /** Largest float of each rank; +infinity for the top rank. */
    private final float[] last = new float[16];

    /** Codes in increasing value order (index = rank). */
    private final int[] ascendingCodes;

    /** Tabulates {@code rule}, whose codes in increasing value order are {@code ascendingCodes}. */
    NibbleLookup(Rule rule, int[] ascendingCodes) {
        this.ascendingCodes = ascendingCodes.clone();
        int[] rankOf = new int[16];
        for (int r = 0; r < 16; r++) {
            rankOf[ascendingCodes[r]] = r;
        }
        for (int r = 0; r < 15; r++) {
            last[r] = lastOfRank(rule, rankOf, r);
        }
        last[15] = Float.POSITIVE_INFINITY;
        for (int h = 0; h < BUCKETS; h++) {
            float a = Float.intBitsToFloat(h << SHIFT);
            float b = Float.intBitsToFloat(h << SHIFT | ((1 << SHIFT) - 1));
            if (!Float.isFinite(a) || !Float.isFinite(b)) {
                // the buckets of +-infinity and of NaNs: one code each, that of their first value
                entry[h] = (byte) rule.code(a);
                continue;
            }
            int low = rule.code(Math.min(a, b));
            int high = rule.code(Math.max(a, b));
            if (low == high) {
                entry[h] = (byte) low;
            } else if (rankOf[high] == rankOf[low] + 1) {
                entry[h] = (byte) (SPLIT | rankOf[low]);
            } else {
                throw new IllegalStateException("bucket " + Integer.toHexString(h) + " spans codes " + low
                        + ".." + high + "; the rule's boundaries are too close for this table");
            }
        }
    }

    /** The code of one value, as the reference rule gives it. */
    int encode(float y) {
        int e = entry[Float.floatToRawIntBits(y) >>> SHIFT];
        return e >= 0 ? e : splitCode(e, y);
    }

    /** The code of {@code y} in a bucket flagged {@link #SPLIT}: its lower rank's, or the next. */
    private int splitCode(int flagged, float y) {
        int r = flagged & 0x0F;
        return ascendingCodes[y > last[r] ? r + 1 : r];
    }

    /**
     * Packs the codes of {@code data[from, to) * r} two per byte from {@code packed[p]}, first
     * element in the high nibble; an odd count pads the last low nibble with the code of
     * {@code 0 * r}, as bitsandbytes quantizes a padding zero there.
     */
    void pack(float[] data, int from, int to, float r, byte[] packed, int p) {
        byte[] entries = entry;
        int i = from;
        for (; i + 1 < to; i += 2) {
            float y0 = data[i] * r;
            float y1 = data[i + 1] * r;
            int c0 = entries[Float.floatToRawIntBits(y0) >>> SHIFT];
            int c1 = entries[Float.floatToRawIntBits(y1) >>> SHIFT];
            if (c0 < 0) {
                c0 = splitCode(c0, y0);
            }
            if (c1 < 0) {
                c1 = splitCode(c1, y1);
            }
            packed[p++] = (byte) (c0 << 4 | c1);
        }
        if (i < to) {
            packed[p] = (byte) (encode(data[i] * r) << 4 | encode(0f * r));
        }
    }

    /** Binary search, in value order over all finite floats, for the largest of rank {@code r}. */
    private static float lastOfRank(Rule rule, int[] rankOf, int r) {
        int lo = orderedBits(-Float.MAX_VALUE);
        int hi = orderedBits(Float.MAX_VALUE);
        while ((long) hi - lo > 1) {
            int mid = (int) (((long) lo + hi) >> 1);
            if (rankOf[rule.code(fromOrderedBits(mid))] <= r) {
                lo = mid;
            } else {
                hi = mid;
            }
        }
        return fromOrderedBits(lo);
    }

    /** Float bits remapped so that int order is value order (-0.0 just below +0.0). */
    private static int orderedBits(float x) {
        int bits = Float.floatToRawIntBits(x);
        return bits ^ ((bits >> 31) & 0x7FFFFFFF);
    }

    private static float fromOrderedBits(int key) {
        return Float.intBitsToFloat(key ^ ((key >> 31) & 0x7FFFFFFF));
    }
}
