package io.qlora4j.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import java.util.function.IntToDoubleFunction;
import java.util.function.IntUnaryOperator;
import org.junit.jupiter.api.Test;

class HalfFloatsTest {

    /**
     * A 16-bit IEEE-style pattern decoded from its layout in double arithmetic: with bias
     * b = 2^(E-1) - 1, normal = (2^M + m) * 2^(e - b - M), subnormal = m * 2^(1 - b - M).
     */
    static double decodeLayout(int bits, int exponentBits, int mantissaBits) {
        int bias = (1 << (exponentBits - 1)) - 1;
        int maxExponent = (1 << exponentBits) - 1;
        int e = (bits >>> mantissaBits) & maxExponent;
        int m = bits & ((1 << mantissaBits) - 1);
        double magnitude = e == maxExponent ? (m == 0 ? Double.POSITIVE_INFINITY : Double.NaN)
                : e == 0 ? Math.scalb((double) m, 1 - bias - mantissaBits)
                : Math.scalb((double) ((1 << mantissaBits) + m), e - bias - mantissaBits);
        return (bits & 0x8000) != 0 ? -magnitude : magnitude;
    }

    /** binary16: 5 exponent bits, 10 mantissa bits. */
    static double f16Reference(int bits) {
        return decodeLayout(bits, 5, 10);
    }

    /** bfloat16: 8 exponent bits, 7 mantissa bits. */
    static double bf16Reference(int bits) {
        return decodeLayout(bits, 8, 7);
    }

    /**
     * The nearest code by brute-force search over the sorted finite positive codes 0..maxFinite,
     * ties to the even code, overflow to infinity from max + half an ulp (IEEE 754 rounding).
     */
    static int nearestCode(float value, IntToDoubleFunction decode, int maxFinite) {
        int sign = Float.floatToRawIntBits(value) < 0 ? 0x8000 : 0;
        double x = Math.abs((double) value);
        double max = decode.applyAsDouble(maxFinite);
        if (x >= max + (max - decode.applyAsDouble(maxFinite - 1)) / 2) {
            return sign | (maxFinite + 1);
        }
        int lo = 0;
        int hi = maxFinite;
        while (lo < hi) { // largest code whose value <= x
            int mid = (lo + hi + 1) >>> 1;
            if (decode.applyAsDouble(mid) <= x) {
                lo = mid;
            } else {
                hi = mid - 1;
            }
        }
        if (lo == maxFinite) {
            return sign | lo;
        }
        double below = x - decode.applyAsDouble(lo);
        double above = decode.applyAsDouble(lo + 1) - x;
        int code = below < above ? lo : above < below ? lo + 1 : (lo & 1) == 0 ? lo : lo + 1;
        return sign | code;
    }

    /** Checks a decoder against a reference on all 65536 patterns, signs of zeros included. */
    private static void assertDecodesLikeReference(IntToDoubleFunction decoder, IntToDoubleFunction reference) {
        for (int bits = 0; bits < 0x10000; bits++) {
            double expected = reference.applyAsDouble(bits);
            double actual = decoder.applyAsDouble(bits);
            if (Double.isNaN(expected)) {
                assertTrue(Double.isNaN(actual), Integer.toHexString(bits));
            } else {
                assertEquals(expected, actual, 0.0, Integer.toHexString(bits));
                assertEquals(bits >= 0x8000, Double.doubleToRawLongBits(actual) < 0, "sign of " + Integer.toHexString(bits));
            }
        }
    }

    @Test
    void bf16ToFloatMatchesBitLayoutForAllPatterns() {
        assertDecodesLikeReference(bits -> HalfFloats.bf16ToFloat((short) bits), HalfFloatsTest::bf16Reference);
    }

    @Test
    void f16ToFloatMatchesBitLayoutForAllPatterns() {
        assertDecodesLikeReference(bits -> HalfFloats.f16ToFloat((short) bits), HalfFloatsTest::f16Reference);
    }

    @Test
    void f16KnownBitPatternsDecodeToTheirValues() {
        assertEquals(1.0f, HalfFloats.f16ToFloat((short) 0x3C00));
        assertEquals(5.9604645e-8f, HalfFloats.f16ToFloat((short) 0x0001)); // smallest subnormal 2^-24
        assertEquals(6.097555e-5f, HalfFloats.f16ToFloat((short) 0x03FF)); // largest subnormal
        assertEquals(6.1035156e-5f, HalfFloats.f16ToFloat((short) 0x0400)); // smallest normal 2^-14
        assertEquals(65504f, HalfFloats.f16ToFloat((short) 0x7BFF));
        assertEquals(Float.POSITIVE_INFINITY, HalfFloats.f16ToFloat((short) 0x7C00));
        assertEquals(Float.NEGATIVE_INFINITY, HalfFloats.f16ToFloat((short) 0xFC00));
        assertTrue(Float.isNaN(HalfFloats.f16ToFloat((short) 0x7E00)));
        assertEquals(Float.floatToRawIntBits(-0.0f), Float.floatToRawIntBits(HalfFloats.f16ToFloat((short) 0x8000)));
    }

    /** Every non-NaN pattern comes back unchanged through float32; NaN comes back as some NaN. */
    private static void assertRoundTrips(IntUnaryOperator throughFloat, IntToDoubleFunction reference) {
        for (int bits = 0; bits < 0x10000; bits++) {
            int back = throughFloat.applyAsInt(bits) & 0xFFFF;
            if (Double.isNaN(reference.applyAsDouble(bits))) {
                assertTrue(Double.isNaN(reference.applyAsDouble(back)), "NaN " + Integer.toHexString(bits));
            } else {
                assertEquals(bits, back, Integer.toHexString(bits));
            }
        }
    }

    @Test
    void aRowIsRoundedInPlaceAndItsFloat16AbsmaxReturned() {
        // 1 + 2^-11 is a tie between 1 and 1 + 2^-10: to even, 1; -(2 + 3 * 2^-11) rounds up in magnitude to 2 + 2^-9
        float[] row = {9f, 1f + 0x1p-11f, -(2f + 3 * 0x1p-11f), 7f};
        assertEquals(2f + 0x1p-9f, HalfFloats.roundRowToF16(row, 1, 2));
        assertEquals(List.of(9f, 1f, -(2f + 0x1p-9f), 7f), List.of(row[0], row[1], row[2], row[3]));
        // 65520 and beyond round to infinity in float16; NaN stays NaN
        assertEquals(Float.POSITIVE_INFINITY, HalfFloats.roundRowToF16(new float[] {1f, -65520f}, 0, 2));
        assertTrue(Float.isNaN(HalfFloats.roundRowToF16(new float[] {Float.NaN, 1f}, 0, 2)));
    }

    @Test
    void everyHalfValueRoundTripsThroughFloat() {
        assertRoundTrips(bits -> HalfFloats.floatToF16(HalfFloats.f16ToFloat((short) bits)), HalfFloatsTest::f16Reference);
        assertRoundTrips(bits -> HalfFloats.floatToBf16(HalfFloats.bf16ToFloat((short) bits)), HalfFloatsTest::bf16Reference);
    }

    @Test
    void floatToF16RoundsToNearestEvenAtEveryMidpointAndBeside() {
        for (int code = 0; code < 0x7BFF; code++) {
            float midpoint = (float) ((f16Reference(code) + f16Reference(code + 1)) / 2); // exact: 12 significant bits
            for (float v : new float[] {midpoint, Math.nextDown(midpoint), Math.nextUp(midpoint)}) {
                assertEquals(nearestCode(v, HalfFloatsTest::f16Reference, 0x7BFF), HalfFloats.floatToF16(v) & 0xFFFF, "f16 of " + v);
                assertEquals(nearestCode(-v, HalfFloatsTest::f16Reference, 0x7BFF), HalfFloats.floatToF16(-v) & 0xFFFF, "f16 of " + -v);
            }
        }
    }

    @Test
    void floatToF16MatchesBruteForceOnRandomFloats() {
        Random random = new Random(7);
        for (int i = 0; i < 200_000; i++) {
            // exponents 2^-30 .. 2^17 cover underflow, subnormals, normals and overflow
            float v = Float.intBitsToFloat((random.nextInt(48) + 97) << 23 | random.nextInt(1 << 23) | (random.nextBoolean() ? 1 << 31 : 0));
            assertEquals(nearestCode(v, HalfFloatsTest::f16Reference, 0x7BFF), HalfFloats.floatToF16(v) & 0xFFFF, "f16 of " + v);
        }
    }

    /** The in-place rounding gives the value of the brute-force nearest code, at every midpoint and on random floats. */
    @Test
    void roundToF16IsTheValueOfTheNearestHalf() {
        Random random = new Random(13);
        List<Float> values = new ArrayList<>();
        for (int code = 0; code < 0x7BFF; code++) {
            float midpoint = (float) ((f16Reference(code) + f16Reference(code + 1)) / 2);
            values.addAll(List.of(midpoint, Math.nextDown(midpoint), Math.nextUp(midpoint)));
        }
        for (int i = 0; i < 200_000; i++) {
            values.add(Float.intBitsToFloat((random.nextInt(48) + 97) << 23 | random.nextInt(1 << 23)));
        }
        values.addAll(List.of(0f, 0x1p-14f, Math.nextDown(0x1p-14f), 0x1p15f, Math.nextDown(0x1p15f),
                32767.999f, 65504f, 65519.996f, 65520f, 1e10f, Float.MAX_VALUE, Float.POSITIVE_INFINITY));
        for (float v : values) {
            for (float x : new float[] {v, -v}) {
                double expected = f16Reference(nearestCode(x, HalfFloatsTest::f16Reference, 0x7BFF));
                assertEquals(Double.doubleToRawLongBits(expected), Double.doubleToRawLongBits(HalfFloats.roundToF16(x)),
                        "value of the half nearest " + x);
            }
        }
        assertTrue(Float.isNaN(HalfFloats.roundToF16(Float.NaN)));
    }

    @Test
    void floatToF16EdgeCases() {
        assertEquals(0x7BFF, HalfFloats.floatToF16(65519.996f) & 0xFFFF);
        assertEquals(0x7C00, HalfFloats.floatToF16(65520f) & 0xFFFF); // tie between 65504 and 2^16 goes to even: infinity
        assertEquals(0xFC00, HalfFloats.floatToF16(-1e10f) & 0xFFFF);
        assertEquals(0x0000, HalfFloats.floatToF16(0x1p-25f) & 0xFFFF); // tie between 0 and 2^-24 goes to even: zero
        assertEquals(0x0001, HalfFloats.floatToF16(Math.nextUp(0x1p-25f)) & 0xFFFF);
        assertEquals(0x8000, HalfFloats.floatToF16(-1e-30f) & 0xFFFF);
        assertEquals(0x0400, HalfFloats.floatToF16(Math.nextDown(0x1p-14f)) & 0xFFFF); // rounds up into the normals
        assertTrue(Float.isNaN(HalfFloats.f16ToFloat(HalfFloats.floatToF16(Float.NaN))));
        assertTrue(Float.isNaN(HalfFloats.f16ToFloat(HalfFloats.floatToF16(Float.intBitsToFloat(0x7F800001))))); // payload only in low bits
    }

    @Test
    void floatToBf16MatchesBruteForceAtMidpointsAndOnRandomFloats() {
        Random random = new Random(11);
        for (int i = 0; i < 200_000; i++) {
            int code = random.nextInt(0x7F7F);
            float midpoint = (float) ((bf16Reference(code) + bf16Reference(code + 1)) / 2); // exact: 9 significant bits
            float any = Float.intBitsToFloat(random.nextInt() & 0x7F7FFFFF);
            for (float v : new float[] {midpoint, Math.nextUp(midpoint), Math.nextDown(midpoint), any, -any}) {
                assertEquals(nearestCode(v, HalfFloatsTest::bf16Reference, 0x7F7F), HalfFloats.floatToBf16(v) & 0xFFFF, "bf16 of " + v);
            }
        }
        assertEquals(0x7F80, HalfFloats.floatToBf16(Float.MAX_VALUE) & 0xFFFF); // above max + half ulp
        assertTrue(Float.isNaN(HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(Float.intBitsToFloat(0x7F800001)))));
        assertTrue(Float.isNaN(HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(Float.intBitsToFloat(0xFFFF0001)))));
    }
}
