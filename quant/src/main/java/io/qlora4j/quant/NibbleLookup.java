package io.qlora4j.quant;

/**
 * A table that reproduces a 4-bit encode rule in two lookups. Codes are handled by rank (their
 * position in value order), which a value's float bits determine almost alone: floats sharing
 * their top 16 bits (sign, exponent, 7 mantissa bits) form a bucket, and a bucket holds at most one
 * decision threshold of NF4 or FP4 (their thresholds lie far more than 1% apart, a bucket spans
 * under 0.8%). Per bucket the table keeps the rank of its smallest value and the largest float
 * still taking that rank; larger values take the next rank. Built from the reference rule, it
 * agrees with it on every float except NaNs whose bits lie within 0xFFFF of an infinity's, which
 * take the infinity's code (the NaN of {@code 0 * infinity} is not among them).
 */
final class NibbleLookup {

    /** A 4-bit encode rule for one value already scaled into [-1, 1]. */
    interface Rule {
        int code(float x);
    }

    private static final int BUCKETS = 1 << 16;

    /** Rank of each bucket's smallest value. */
    private final byte[] lowRank = new byte[BUCKETS];

    /** Largest float of the bucket that takes {@code lowRank}; +infinity if no value takes more. */
    private final float[] threshold = new float[BUCKETS];

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
        for (int h = 0; h < BUCKETS; h++) {
            float a = Float.intBitsToFloat(h << 16);
            float b = Float.intBitsToFloat(h << 16 | 0xFFFF);
            threshold[h] = Float.POSITIVE_INFINITY;
            if (!Float.isFinite(a) || !Float.isFinite(b)) {
                // the buckets of +-infinity and of NaNs: one rank each, that of their first value
                lowRank[h] = (byte) rankOf[rule.code(a)];
                continue;
            }
            float min = Math.min(a, b);
            float max = Math.max(a, b);
            int low = rankOf[rule.code(min)];
            int high = rankOf[rule.code(max)];
            if (high != low && high != low + 1) {
                throw new IllegalStateException("bucket " + Integer.toHexString(h) + " spans ranks " + low
                        + ".." + high + "; the rule's thresholds are too close for this table");
            }
            lowRank[h] = (byte) low;
            if (high != low) {
                threshold[h] = lastWithRank(rule, rankOf, min, max, low);
            }
        }
    }

    /** The code of one value, as the reference rule gives it. */
    int encode(float y) {
        return ascendingCodes[rank(y)];
    }

    /** The rank of a value: the bucket's low rank, plus one above the bucket's threshold. */
    private int rank(float y) {
        int h = Float.floatToRawIntBits(y) >>> 16;
        return lowRank[h] + (y > threshold[h] ? 1 : 0);
    }

    /**
     * Packs the codes of {@code data[from, to) * r} two per byte from {@code packed[p]}, first
     * element in the high nibble; an odd count pads the last low nibble with the code of
     * {@code 0 * r}, as bitsandbytes quantizes a padding zero there.
     */
    void pack(float[] data, int from, int to, float r, byte[] packed, int p) {
        byte[] ranks = lowRank;
        float[] thresholds = threshold;
        byte[] pairs = pairByte;
        int i = from;
        for (; i + 1 < to; i += 2) {
            float y0 = data[i] * r;
            float y1 = data[i + 1] * r;
            int h0 = Float.floatToRawIntBits(y0) >>> 16;
            int h1 = Float.floatToRawIntBits(y1) >>> 16;
            int r0 = ranks[h0] + (y0 > thresholds[h0] ? 1 : 0);
            int r1 = ranks[h1] + (y1 > thresholds[h1] ? 1 : 0);
            packed[p++] = pairs[r0 << 4 | r1];
        }
        if (i < to) {
            packed[p] = pairs[rank(data[i] * r) << 4 | rank(0f * r)];
        }
    }

    /** Binary search, in value order, for the largest float in [min, max) of rank {@code low}. */
    private static float lastWithRank(Rule rule, int[] rankOf, float min, float max, int low) {
        int lo = orderedBits(min);
        int hi = orderedBits(max);
        while (hi - lo > 1) {
            int mid = (int) (((long) lo + hi) >> 1);
            if (rankOf[rule.code(fromOrderedBits(mid))] == low) {
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
