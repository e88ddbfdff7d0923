package io.qlora4j.quant;

/**
 * A 4-bit encode rule in table form, one lookup per value. Codes are handled by rank (their
 * position in value order); as the rule is monotone, rank {@code r} covers the floats up to a
 * last one, {@code last[r]}. Floats sharing their top 20 bits (sign, exponent, 11 mantissa bits)
 * form a bucket of relative width under 0.05%; most buckets hold one rank, which the table gives
 * directly. A bucket that holds a boundary (NF4's and FP4's lie more than 1% apart, so at most
 * one) is flagged, and its values compare with {@code last} of the lower rank. Built from the
 * reference rule, the table agrees with it on every float except NaNs whose bits lie within
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

    /** Flags a bucket that holds a boundary between two ranks. */
    private static final int SPLIT = 0x80;

    /** Rank of each bucket's smallest value, with {@link #SPLIT} if the next rank starts inside. */
    private final byte[] lowRank = new byte[BUCKETS];

    /** Largest float of each rank; +infinity for the top rank. */
    private final float[] last = new float[16];

    /** The packed byte of a pair of ranks {@code r0 << 4 | r1}: their codes, first in the high nibble. */
    private final byte[] pairByte = new byte[256];

    private final int[] ascendingCodes;

    /** Tabulates {@code rule}, whose codes in increasing value order are {@code ascendingCodes}. */
    NibbleLookup(Rule rule, int[] ascendingCodes) {
        this.ascendingCodes = ascendingCodes.clone();
        int[] rankOf = new int[16];
        for (int r = 0; r < 16; r++) {
            rankOf[ascendingCodes[r]] = r;
        }
        for (int pair = 0; pair < 256; pair++) {
            pairByte[pair] = (byte) (ascendingCodes[pair >>> 4] << 4 | ascendingCodes[pair & 0x0F]);
        }
        for (int r = 0; r < 15; r++) {
            last[r] = lastOfRank(rule, rankOf, r);
        }
        last[15] = Float.POSITIVE_INFINITY;
        for (int h = 0; h < BUCKETS; h++) {
            float a = Float.intBitsToFloat(h << SHIFT);
            float b = Float.intBitsToFloat(h << SHIFT | ((1 << SHIFT) - 1));
            if (!Float.isFinite(a) || !Float.isFinite(b)) {
                // the buckets of +-infinity and of NaNs: one rank each, that of their first value
                lowRank[h] = (byte) rankOf[rule.code(a)];
                continue;
            }
            int low = rankOf[rule.code(Math.min(a, b))];
            int high = rankOf[rule.code(Math.max(a, b))];
            if (high != low && high != low + 1) {
                throw new IllegalStateException("bucket " + Integer.toHexString(h) + " spans ranks " + low
                        + ".." + high + "; the rule's boundaries are too close for this table");
            }
            lowRank[h] = (byte) (high == low ? low : low | SPLIT);
        }
    }

    /** The code of one value, as the reference rule gives it. */
    int encode(float y) {
        return ascendingCodes[rank(y)];
    }

    private int rank(float y) {
        int r = lowRank[Float.floatToRawIntBits(y) >>> SHIFT];
        return r >= 0 ? r : splitRank(r, y);
    }

    /** The rank of {@code y} in a bucket flagged {@link #SPLIT}: its low rank, or the next one. */
    private int splitRank(int flagged, float y) {
        int r = flagged & 0x0F;
        return y > last[r] ? r + 1 : r;
    }

    /**
     * Packs the codes of {@code data[from, to) * r} two per byte from {@code packed[p]}, first
     * element in the high nibble; an odd count pads the last low nibble with the code of
     * {@code 0 * r}, as bitsandbytes quantizes a padding zero there.
     */
    void pack(float[] data, int from, int to, float r, byte[] packed, int p) {
        byte[] ranks = lowRank;
        byte[] pairs = pairByte;
        int i = from;
        for (; i + 1 < to; i += 2) {
            float y0 = data[i] * r;
            float y1 = data[i + 1] * r;
            int r0 = ranks[Float.floatToRawIntBits(y0) >>> SHIFT];
            int r1 = ranks[Float.floatToRawIntBits(y1) >>> SHIFT];
            if (r0 < 0) {
                r0 = splitRank(r0, y0);
            }
            if (r1 < 0) {
                r1 = splitRank(r1, y1);
            }
            packed[p++] = pairs[r0 << 4 | r1];
        }
        if (i < to) {
            packed[p] = pairs[rank(data[i] * r) << 4 | rank(0f * r)];
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
