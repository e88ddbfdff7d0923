package io.qlora4j.quant;

/**
 * Conversions between float32 and the two 16-bit float formats of checkpoints, done in Java
 * because DJL's PyTorch engine cannot hold bfloat16 and Java 17 has no float16 helpers.
 * Narrowing rounds to nearest, ties to even, as PyTorch does.
 */
public final class HalfFloats {

    private HalfFloats() {
    }

    /** The float32 value of a bfloat16 bit pattern: its bits are the high half of the float's. */
    public static float bf16ToFloat(short bits) {
        return Float.intBitsToFloat((bits & 0xFFFF) << 16);
    }

    /** The nearest bfloat16 (ties to even; overflow rounds to infinity; NaN stays a quiet NaN). */
    public static short floatToBf16(float value) {
        int bits = Float.floatToRawIntBits(value);
        if (Float.isNaN(value)) {
            return (short) ((bits >>> 16) | 0x0040);
        }
        int roundingBias = 0x7FFF + ((bits >>> 16) & 1);
        return (short) ((bits + roundingBias) >>> 16);
    }

    /** The float32 value of an IEEE 754 binary16 bit pattern (subnormals, infinities and NaN included). */
    public static float f16ToFloat(short bits) {
        int sign = (bits & 0x8000) << 16;
        int exponent = (bits >>> 10) & 0x1F;
        int mantissa = bits & 0x3FF;
        if (exponent == 0x1F) {
            return Float.intBitsToFloat(sign | 0x7F800000 | (mantissa << 13));
        }
        if (exponent == 0) {
            float magnitude = mantissa * 0x1p-24f; // exact: at most 10 significant bits
            return sign == 0 ? magnitude : -magnitude;
        }
        return Float.intBitsToFloat(sign | ((exponent + 127 - 15) << 23) | (mantissa << 13));
    }

    /**
     * The nearest binary16 (ties to even): magnitudes from 65520 up become infinity, tiny values
     * become subnormals or a signed zero, NaN stays a quiet NaN.
     */
    public static short floatToF16(float value) {
        int bits = Float.floatToRawIntBits(value);
        int sign = (bits >>> 16) & 0x8000;
        int abs = bits & 0x7FFFFFFF;
        if (abs > 0x7F800000) {
            return (short) (sign | 0x7E00 | ((abs >>> 13) & 0x3FF));
        }
        if (abs >= 0x477FF000) { // 65520, halfway between 65504 and 65536: ties go to the even 65536 = inf
            return (short) (sign | 0x7C00);
        }
        int exponent = abs >>> 23;
        if (exponent >= 127 - 14) { // normal half
            int half = ((exponent - 127 + 15) << 10) | ((abs >>> 13) & 0x3FF);
            return (short) (sign | roundHalfEven(half, abs & 0x1FFF, 13));
        }
        if (exponent < 127 - 25) { // below half the smallest subnormal 2^-24
            return (short) sign;
        }
        int significand = (abs & 0x7FFFFF) | 0x800000; // value = significand * 2^(exponent - 150)
        int shift = 126 - exponent; // to units of 2^-24, the subnormal step
        int half = significand >>> shift;
        return (short) (sign | roundHalfEven(half, significand & ((1 << shift) - 1), shift));
    }

    /**
     * The float32 value of the binary16 nearest {@code value} ({@code f16ToFloat(floatToF16(value))}, the rounding a
     * float16 tensor gives its values): where the result is a normal half below 2^15, the float's significand is
     * rounded to 10 bits in place (ties to even), which needs no conversion; elsewhere the two conversions.
     */
    public static float roundToF16(float value) {
        int bits = Float.floatToRawIntBits(value);
        int exponent = (bits >>> 23) & 0xFF;
        if (exponent >= 127 - 14 && exponent < 127 + 15) { // a carry out of the significand stays below 2^16
            return Float.intBitsToFloat((bits + 0xFFF + ((bits >>> 13) & 1)) & ~0x1FFF);
        }
        return f16ToFloat(floatToF16(value));
    }

    /**
     * Rounds {@code values[from, from + n)} to float16 in place ({@link #roundToF16}, as {@code W.to(float16)} does to
     * a row before an int8 quantizer takes its absmax) and returns the largest magnitude among them: infinite where a
     * value is beyond float16's range, NaN where one is NaN.
     */
    public static float roundRowToF16(float[] values, int from, int n) {
        float absmax = 0;
        for (int i = from; i < from + n; i++) {
            values[i] = roundToF16(values[i]);
            absmax = Math.max(absmax, Math.abs(values[i]));
        }
        return absmax;
    }

    /** Adds one to a truncated result when the dropped bits are above half, or exactly half and the result is odd. */
    private static int roundHalfEven(int truncated, int dropped, int droppedBits) {
        int halfway = 1 << (droppedBits - 1);
        return dropped > halfway || (dropped == halfway && (truncated & 1) != 0) ? truncated + 1 : truncated;
    }
}
