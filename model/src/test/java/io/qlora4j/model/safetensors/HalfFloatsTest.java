package io.qlora4j.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Random;
import java.util.function.IntToDoubleFunction;
import org.junit.jupiter.api.Test;

class HalfFloatsTest {

    /** binary16 decoded from its bit layout in double arithmetic: (1024 + m) * 2^(e - 25), subnormal m * 2^-24. */
    static double f16Reference(int bits) {
        int e = (bits >>> 10) & 0x1F;
        int m = bits & 0x3FF;
        double magnitude = e == 0x1F ? (m == 0 ? Double.POSITIVE_INFINITY : Double.NaN)
                : e == 0 ? Math.scalb((double) m, -24) : Math.scalb((double) (1024 + m), e - 25);
        return (bits & 0x8000) != 0 ? -magnitude : magnitude;
    }

    /** bfloat16 decoded from its bit layout: (128 + m) * 2^(e - 134), subnormal m * 2^-133. */
    static double bf16Reference(int bits) {
        int e = (bits >>> 7) & 0xFF;
        int m = bits & 0x7F;
        double magnitude = e == 0xFF ? (m == 0 ? Double.POSITIVE_INFINITY : Double.NaN)
                : e == 0 ? Math.scalb((double) m, -133) : Math.scalb((double) (128 + m), e - 134);
        return (bits & 0x8000) != 0 ? -magnitude : magnitude;
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

    @Test
    void bf16ToFloatMatchesBitLayoutForAllPatterns() {
        for (int bits = 0; bits < 0x10000; bits++) {
            double expected = bf16Reference(bits);
            float actual = HalfFloats.bf16ToFloat((short) bits);
            if (Double.isNaN(expected)) {
                assertTrue(Float.isNaN(actual), Integer.toHexString(bits));
            } else {
                assertEquals(expected, actual, 0.0, Integer.toHexString(bits));
                assertEquals(bits >= 0x8000, Float.floatToRawIntBits(actual) < 0, "sign of " + Integer.toHexString(bits));
            }
        }
    }

    @Test
    void f16ToFloatMatchesBitLayoutForAllPatterns() {
        for (int bits = 0; bits < 0x10000; bits++) {
            double expected = f16Reference(bits);
            float actual = HalfFloats.f16ToFloat((short) bits);
            if (Double.isNaN(expected)) {
                assertTrue(Float.isNaN(actual), Integer.toHexString(bits));
            } else {
                assertEquals(expected, actual, 0.0, Integer.toHexString(bits));
                assertEquals(bits >= 0x8000, Float.floatToRawIntBits(actual) < 0, "sign of " + Integer.toHexString(bits));
            }
        }
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

    @Test
    void everyHalfValueRoundTripsThroughFloat() {
        for (int bits = 0; bits < 0x10000; bits++) {
            short f16 = HalfFloats.floatToF16(HalfFloats.f16ToFloat((short) bits));
            short bf16 = HalfFloats.floatToBf16(HalfFloats.bf16ToFloat((short) bits));
            if (Double.isNaN(f16Reference(bits))) {
                assertTrue(Double.isNaN(f16Reference(f16 & 0xFFFF)), "f16 NaN " + Integer.toHexString(bits));
            } else {
                assertEquals(bits, f16 & 0xFFFF, "f16 " + Integer.toHexString(bits));
            }
            if (Double.isNaN(bf16Reference(bits))) {
                assertTrue(Double.isNaN(bf16Reference(bf16 & 0xFFFF)), "bf16 NaN " + Integer.toHexString(bits));
            } else {
                assertEquals(bits, bf16 & 0xFFFF, "bf16 " + Integer.toHexString(bits));
            }
        }
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
