package io.qlora4j.quant;

import java.util.Arrays;

/**
 * bitsandbytes' 8-bit dynamic map ({@code create_dynamic_map(signed, max_exponent_bits=7,
 * total_bits=8)}): 256 sorted float32 values in [-1, 1] (signed) or [0, 1] (unsigned), dense near
 * zero. It codes double-quantized scales here and 8-bit optimizer state elsewhere.
 *
 * <p>For exponent {@code i = 0..6} the map takes the midpoints of {@code torch.linspace(0.1, 1, k)}
 * with {@code k = 2^i + 1} (signed, each also negated) or {@code k = 2^(i+1) + 1} (unsigned),
 * times {@code 10^(i-6)}, then adds 0 and 1 and sorts: 127 + 1 + 128 values signed, 254 + 2
 * unsigned, so neither needs padding to 256. The float32 linspace is reproduced as libtorch
 * 2.7.1's x86 (AVX2) kernel computes it, with a fused multiply-add; a float64 linspace would
 * differ in the last bit of some entries. Checkpoints carry the map ({@code nested_quant_map}),
 * and a loader should use the stored one.
 */
public final class DynamicMap {

    /** {@code 10^(i-6)} as Python evaluates {@code 10 ** (i - 6)}, rounded to float32 by torch. */
    private static final double[] DECADES = {1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0};

    /** Bucket index = float bits >>> SHIFT: sign, exponent and the top 11 mantissa bits. */
    private static final int SHIFT = 12;

    /** Buckets per sign for magnitudes below 2 (biased exponent up to 127). */
    private static final int HALF = 1 << 18;

    private static final DynamicMap SIGNED = new DynamicMap(build(true));
    private static final DynamicMap UNSIGNED = new DynamicMap(build(false));

    private final float[] values;

    /** {@code (values[p + 1] + values[p]) * 0.5f}, +infinity for the last entry. */
    private final float[] midpointAbove = new float[256];

    /** {@code (values[p - 1] + values[p]) * 0.5f}, -infinity for the first entry. */
    private final float[] midpointBelow = new float[256];

    /**
     * Codes by bucket of floats sharing sign, exponent and 11 mantissa bits, for magnitudes below 2:
     * the bucket's code where {@link #search} gives all of its floats one code (the rule is monotone,
     * so checking both ends suffices), else -1. Relative bucket width is under 0.05%, the map's
     * entries lie at least 0.7% apart, so only buckets holding a midpoint fall back to the search.
     */
    private final short[] buckets = new short[2 * HALF];

    private DynamicMap(float[] values) {
        this.values = values;
        for (int p = 0; p < 256; p++) {
            midpointAbove[p] = p < 255 ? (values[p + 1] + values[p]) * 0.5f : Float.POSITIVE_INFINITY;
            midpointBelow[p] = p > 0 ? (values[p - 1] + values[p]) * 0.5f : Float.NEGATIVE_INFINITY;
        }
        for (int h = 0; h < buckets.length; h++) {
            int low = (h >= HALF ? Integer.MIN_VALUE | (h - HALF) << SHIFT : h << SHIFT);
            int code = search(Float.intBitsToFloat(low));
            buckets[h] = (short) (code == search(Float.intBitsToFloat(low | ((1 << SHIFT) - 1))) ? code : -1);
        }
    }

    /** The signed map (min -0.99296874, max 1.0) used for double-quantized 4-bit scales. */
    public static DynamicMap signed() {
        return SIGNED;
    }

    /** The unsigned map (min 0.0, max 1.0), as bitsandbytes uses for non-negative state. */
    public static DynamicMap unsigned() {
        return UNSIGNED;
    }

    /** A copy of the 256 sorted values; index = code. */
    public float[] values() {
        return values.clone();
    }

    /** The value of an 8-bit code (0..255). */
    public float decode(int code) {
        if (code < 0 || code > 255) {
            throw new IllegalArgumentException("8-bit code " + code + " is outside 0..255");
        }
        return values[code];
    }

    /**
     * The code of a value already scaled into the map's range, exactly as bitsandbytes' CUDA
     * {@code dQuantize}: a 7-step binary search over the sorted map lands on an even index
     * {@code p} with {@code values[p - 1] < x <= values[p + 1]}, then the float32 midpoint to the
     * neighbour on {@code x}'s side decides (strict comparisons both ways). The nearest entry wins;
     * a value exactly on a midpoint takes the even code of the pair.
     */
    public int encode(float x) {
        int bits = Float.floatToRawIntBits(x);
        int magnitude = (bits & 0x7FFFFFFF) >>> SHIFT;
        if (magnitude < HALF) {
            int code = buckets[(bits >>> 31) * HALF + magnitude];
            if (code >= 0) {
                return code;
            }
        }
        return search(x);
    }

    /** The binary search and midpoint rule of {@link #encode}, for any float. */
    int search(float x) {
        float[] v = values;
        int p = 127;
        for (int step = 64; step > 0; step >>= 1) {
            p += x > v[p] ? step : -step;
        }
        // at most one of the two holds: midpointBelow[p] < values[p] < midpointAbove[p]
        return p + (x > midpointAbove[p] ? 1 : 0) - (x < midpointBelow[p] ? 1 : 0);
    }

    private static float[] build(boolean signed) {
        float[] data = new float[256];
        int n = 0;
        for (int i = 0; i < 7; i++) {
            int k = signed ? (1 << i) + 1 : (1 << (i + 1)) + 1;
            float[] b = torchLinspace(0.1f, 1.0f, k);
            float scale = (float) DECADES[i];
            for (int j = 0; j + 1 < k; j++) {
                float mean = (b[j] + b[j + 1]) / 2.0f;
                data[n++] = scale * mean;
                if (signed) {
                    data[n++] = -(scale * mean);
                }
            }
        }
        data[n++] = 0f;
        data[n++] = 1.0f;
        if (n != 256) {
            throw new IllegalStateException("dynamic map has " + n + " entries, expected 256");
        }
        Arrays.sort(data);
        return data;
    }

    /**
     * {@code torch.linspace(start, end, steps, dtype=float32)} on x86 CPUs: the first half counts
     * up from {@code start}, the second half down from {@code end}, each a single rounding of
     * {@code start + step * i} (fused multiply-add), with {@code step} rounded to float32 first.
     */
    static float[] torchLinspace(float start, float end, int steps) {
        float step = (end - start) / (float) (steps - 1);
        float[] out = new float[steps];
        int half = steps / 2;
        for (int i = 0; i < steps; i++) {
            out[i] = i < half
                    ? Math.fma(step, (float) i, start)
                    : Math.fma(-step, (float) (steps - 1 - i), end);
        }
        return out;
    }
}
