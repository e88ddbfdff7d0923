package io.qlora4j.quant.int8;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.HalfFloats;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** LLM.int8 codes against hand-derived vectors (QUANT-OTFQ section 5.1 and our own) and the stated rule. */
class LlmInt8QuantizerTest {

    private static LlmInt8Tensor quantize(float[][] rows) {
        int in = rows[0].length;
        float[] flat = new float[rows.length * in];
        for (int r = 0; r < rows.length; r++) {
            System.arraycopy(rows[r], 0, flat, r * in, in);
        }
        return LlmInt8Quantizer.quantize(FloatSource.<RuntimeException>of(flat), new long[] {rows.length, in});
    }

    @Test
    void rowAbsmaxScalesTo127AndHalvesRoundToEven() {
        // SCB 2, scale 63.5: 31.75 -> 32, -63.5 -> -64 (half to even), 95.25 -> 95
        LlmInt8Tensor t = quantize(new float[][] {{0.5f, -1f, 0.25f, 0.125f, 2f, -2f, 0f, 1.5f}});
        assertArrayEquals(new float[] {2f}, t.scb());
        assertArrayEquals(new byte[] {32, -64, 16, 8, 127, -127, 0, 95}, t.codes());
    }

    @Test
    void theScaleIsTheFloat32ReciprocalTimes127NotACorrectlyRoundedQuotient() {
        // f32(1/3) * 127 = 42.333336, and 1.5 * 42.333336 = 63.500004 -> 64; 127/3 = 42.333332 would give 63.
        LlmInt8Tensor t = quantize(new float[][] {{3f, 1.5f}});
        assertArrayEquals(new byte[] {127, 64}, t.codes());
    }

    @Test
    void threeRowsOfTheLlmInt8ForwardExample() {
        LlmInt8Tensor t = quantize(new float[][] {{1f, 0f, 0.5f, -1f}, {0.25f, 0.5f, -0.5f, 0f}, {2f, -1f, 0f, 0.5f}});
        assertArrayEquals(new float[] {1f, 0.5f, 2f}, t.scb());
        assertArrayEquals(new byte[] {127, 0, 64, -127, 64, 127, -127, 0, 127, -64, 0, 32}, t.codes());
        // the dequantized row 0 bitsandbytes' backward uses, in bfloat16: [1, 0, 0.50390625, -1]
        float[] w = t.dequantize();
        assertEquals(0.50390625f, HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(w[2])));
        assertEquals(64 * (1f * (float) (1.0 / 127.0)), w[2]);
        assertEquals(1f * (127 * (float) (1.0 / 127.0)), w[0]);
    }

    @Test
    void weightsAreRoundedToFloat16FirstWhichCanMoveACode() {
        // 0.00393705 * 127 = 0.5000054 would code to 1, but its float16 value 2^-8 + 8 * 2^-18 = 0.003936767578125
        // times 127 is 0.49996948, so the code is 0; the row's absmax 1 is a float16 value already.
        LlmInt8Tensor t = quantize(new float[][] {{1f, 0.00393705f}});
        assertArrayEquals(new byte[] {127, 0}, t.codes());
        // and the absmax itself is the float16 value: 1/3 -> 0.333251953125
        assertArrayEquals(new float[] {0.333251953125f}, quantize(new float[][] {{1f / 3, -0.1f}}).scb());
    }

    @Test
    void anAllZeroRowHasZeroScaleAndCodes() {
        LlmInt8Tensor t = quantize(new float[][] {{0f, 0f, -0f}, {1f, -1f, 0.5f}});
        assertArrayEquals(new float[] {0f, 1f}, t.scb());
        assertArrayEquals(new byte[] {0, 0, 0, 127, -127, 64}, t.codes());
        assertArrayEquals(new float[] {0f, 0f, 0f}, Arrays.copyOf(t.dequantize(), 3));
    }

    @Test
    void aValueBeyondFloat16sRangeIsRefusedNamingTheRow() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> quantize(new float[][] {{1f, 2f}, {70000f, 1f}}));
        assertTrue(e.getMessage().startsWith("row 1 holds a value beyond float16's range"), e.getMessage());
    }

    @Test
    void aLargeWeightQuantizedOnEveryCoreEqualsTheRuleRowByRow() {
        int out = 300;
        int in = 700;
        Random random = new Random(7);
        float[] w = new float[out * in];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) (random.nextGaussian() * 0.05);
        }
        LlmInt8Tensor t = LlmInt8Quantizer.quantize(FloatSource.<RuntimeException>of(w), new long[] {out, in});
        int ties = 0;
        for (int r = 0; r < out; r++) {
            float absmax = 0;
            for (int c = 0; c < in; c++) {
                absmax = Math.max(absmax, Math.abs(toFloat16(w[r * in + c])));
            }
            assertEquals(absmax, t.scb()[r], "row " + r);
            float scale = (1f / absmax) * 127f;
            for (int c = 0; c < in; c++) {
                float scaled = toFloat16(w[r * in + c]) * scale;
                long expected = Math.round(scaled);
                if (Math.abs(scaled - Math.floor(scaled)) == 0.5) {
                    expected = (long) Math.floor(scaled) + ((long) Math.floor(scaled) & 1); // half to even
                    ties++;
                }
                assertEquals(expected, t.codes()[r * in + c], "row " + r + " column " + c);
            }
        }
        assertTrue(ties < out * in / 100, "ties are rare: " + ties);
        assertEquals((long) out * in + 4L * out, t.bytes());
    }

    /** The nearest float16 value (ties to even), by rounding the significand to 11 bits; independent of HalfFloats. */
    private static float toFloat16(float x) {
        if (x == 0 || Math.abs(x) < 0x1p-14f) {
            return (float) (Math.rint(x * 0x1p24) * 0x1p-24); // subnormal float16: multiples of 2^-24
        }
        int e = Math.getExponent(x);
        return (float) Math.scalb(Math.rint(Math.scalb((double) x, 10 - e)), e - 10);
    }
}
