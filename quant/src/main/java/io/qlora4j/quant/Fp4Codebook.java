package io.qlora4j.quant;

/**
 * The FP4 (E2M1) code table of bitsandbytes ({@code get_4bit_type("fp4")}) and its
 * quantize-one-value rule ({@code dQuantizeFP4} in {@code csrc/kernels.cu}). Bit 3 is the sign;
 * the three low bits do not sort by value (0, 1/192, 2/3, 1, 1/3, 1/2, 1/6, 1/4).
 */
final class Fp4Codebook {

    /**
     * Code {@code i} decodes to {@code VALUES[i]}: {@code {0, 0.0625, 8, 12, 4, 6, 2, 3}/12} in
     * float32 and their negatives. Entry 8 is +0.0 as in bitsandbytes' stored {@code quant_map}
     * (Python's {@code -0} is the integer 0); its CUDA dequantize kernel yields -0.0 there, equal
     * in value.
     */
    static final float[] VALUES = new float[16];

    /**
     * The magnitude thresholds of bitsandbytes' CUDA tree in ascending order, as written in the
     * kernel. Five of them miss the float32 midpoints of their neighbours (0.00260417f by 14 ulps
     * above, 0.583333f by 6 below, 0.20833333f, 0.29166667f and 0.8333333f by 1 below); the
     * kernel's constants are what decide, while bitsandbytes' CPU path uses the midpoints.
     */
    static final float[] THRESHOLDS = {
        0.00260417f, 0.0859375f, 0.20833333f, 0.29166667f, 0.4166667f, 0.583333f, 0.8333333f,
    };

    /** The 3-bit magnitude code of each magnitude rank (index = number of thresholds exceeded). */
    private static final int[] RANK_TO_CODE = {0, 1, 6, 7, 4, 5, 2, 3};

    /**
     * Codes in increasing order of the values the rule assigns them: -1 (11) up to -1/192 (9),
     * then code 8 for negatives too small for 1/192, code 0 from -0.0 on, 1/192 (1) up to 1 (3).
     */
    static final int[] ASCENDING_CODES = {11, 10, 13, 12, 15, 14, 9, 8, 0, 1, 6, 7, 4, 5, 2, 3};

    static {
        float[] unscaled = {0f, 0.0625f, 8f, 12f, 4f, 6f, 2f, 3f};
        for (int i = 0; i < 8; i++) {
            VALUES[i] = unscaled[i] / 12f;
            VALUES[i + 8] = i == 0 ? 0f : -unscaled[i] / 12f;
        }
    }

    private Fp4Codebook() {}

    /**
     * The FP4 code of a value already scaled into [-1, 1]: sign bit 8 for {@code x < 0} (so -0.0
     * gives code 0), then the magnitude's rank among the thresholds with strict {@code >}, so a
     * magnitude exactly on a threshold takes the smaller magnitude. NaN gives code 0.
     */
    static int encode(float x) {
        int sign = x < 0f ? 8 : 0;
        float a = Math.abs(x);
        int r = a > THRESHOLDS[3] ? 4 : 0;
        r += a > THRESHOLDS[r + 1] ? 2 : 0;
        r += a > THRESHOLDS[r] ? 1 : 0;
        return RANK_TO_CODE[r] | sign;
    }
}
