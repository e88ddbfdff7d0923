package io.qlora4j.quant;

/**
 * The 4-bit NormalFloat code table of bitsandbytes ({@code get_4bit_type("nf4")}) and its
 * quantize-one-value rule ({@code dQuantizeNF4} in {@code csrc/kernels.cu}).
 */
final class Nf4Codebook {

    /** Code {@code i} decodes to {@code VALUES[i]}; hard-coded float32 values, never regenerated. */
    static final float[] VALUES = {
        -1.0f,
        -0.6961928009986877f,
        -0.5250730514526367f,
        -0.39491748809814453f,
        -0.28444138169288635f,
        -0.18477343022823334f,
        -0.09105003625154495f,
        0.0f,
        0.07958029955625534f,
        0.16093020141124725f,
        0.24611230194568634f,
        0.33791524171829224f,
        0.44070982933044434f,
        0.5626170039176941f,
        0.7229568362236023f,
        1.0f,
    };

    /**
     * The decision constants of bitsandbytes' CUDA tree, its decimal literals rounded directly to
     * float32 as a C or Java compiler reads an {@code f} literal. A value goes above constant
     * {@code i} only if it is strictly greater, so a value exactly on it takes the lower code.
     * Eleven equal the float32 midpoint {@code (VALUES[i] + VALUES[i + 1]) / 2} that bitsandbytes'
     * CPU path compares against; for i = 0, 8, 12 and 14 the exact midpoint falls between two
     * floats and the literal lands one ulp from the float32 sum, so the two paths disagree on
     * exactly one float value each.
     */
    static final float[] MIDPOINTS = {
        -0.8480964004993439f,
        -0.6106329262256622f,
        -0.4599952697753906f,
        -0.33967943489551544f,
        -0.23460740596055984f,
        -0.13791173323988914f,
        -0.045525018125772476f,
        0.03979014977812767f,
        0.1202552504837513f,
        0.2035212516784668f,
        0.2920137718319893f,
        0.3893125355243683f,
        0.5016634166240692f,
        0.6427869200706482f,
        0.8614784181118011f,
    };

    /** Codes in increasing value order: NF4 codes are sorted already. */
    static final int[] ASCENDING_CODES = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};

    private Nf4Codebook() {}

    /**
     * The NF4 code of a value already scaled into [-1, 1]: the number of midpoints it strictly
     * exceeds, found by a branch-free 4-step search. NaN compares false everywhere and gives code
     * 0, as in the CUDA kernel.
     */
    static int encode(float x) {
        int c = x > MIDPOINTS[7] ? 8 : 0;
        c += x > MIDPOINTS[c + 3] ? 4 : 0;
        c += x > MIDPOINTS[c + 1] ? 2 : 0;
        c += x > MIDPOINTS[c] ? 1 : 0;
        return c;
    }
}
