package io.qlora4j.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

class NibbleLookupTest {

    private static void assertAgreesAround(QuantType type, NibbleLookup.Rule rule, float x) {
        float y = x;
        for (int k = 0; k < 64; k++) {
            assertEquals(rule.code(y), type.lookup().encode(y), type + " at " + y);
            assertEquals(rule.code(-y), type.lookup().encode(-y), type + " at " + -y);
            y = Math.nextUp(y);
        }
        y = x;
        for (int k = 0; k < 64; k++) {
            y = Math.nextDown(y);
            assertEquals(rule.code(y), type.lookup().encode(y), type + " at " + y);
        }
    }

    @Test
    void lookupAgreesWithTheReferenceRuleAroundEveryThreshold() {
        for (float m : Nf4Codebook.MIDPOINTS) {
            assertAgreesAround(QuantType.NF4, Nf4Codebook::encode, m);
        }
        for (float t : Fp4Codebook.THRESHOLDS) {
            assertAgreesAround(QuantType.FP4, Fp4Codebook::encode, t);
        }
        assertAgreesAround(QuantType.FP4, Fp4Codebook::encode, 0f);
        assertAgreesAround(QuantType.NF4, Nf4Codebook::encode, 0f);
    }

    @Test
    void lookupAgreesWithTheReferenceRuleAcrossAllFloatBits() {
        // a stride through every bit pattern: all exponents, both signs, scattered mantissas
        for (long bits = 0; bits <= 0xFFFFFFFFL; bits += 4093) {
            float x = Float.intBitsToFloat((int) bits);
            if (Float.isNaN(x)) {
                continue;
            }
            assertEquals(Nf4Codebook.encode(x), QuantType.NF4.lookup().encode(x), "NF4 at " + x);
            assertEquals(Fp4Codebook.encode(x), QuantType.FP4.lookup().encode(x), "FP4 at " + x);
        }
    }

    @Test
    void infinitiesAndTheNanOfZeroTimesInfinityFollowTheKernel() {
        float nan = 0f * Float.POSITIVE_INFINITY;
        // CUDA: every comparison with NaN is false -> NF4 code 0, FP4 code 0
        assertEquals(0, QuantType.NF4.lookup().encode(nan));
        assertEquals(0, QuantType.FP4.lookup().encode(nan));
        assertEquals(15, QuantType.NF4.lookup().encode(Float.POSITIVE_INFINITY));
        assertEquals(0, QuantType.NF4.lookup().encode(Float.NEGATIVE_INFINITY));
        assertEquals(3, QuantType.FP4.lookup().encode(Float.POSITIVE_INFINITY));
        assertEquals(11, QuantType.FP4.lookup().encode(Float.NEGATIVE_INFINITY));
    }

    @Test
    void subnormalAbsmaxGivesTheKernelsCodesForZeroAndPadding() {
        // 1 / 1e-45f overflows to infinity: 0 * inf = NaN -> code 0 for zeros and the padding
        // nibble, as in bitsandbytes' CUDA kernel; the nonzero element becomes inf -> code 15
        QuantizedTensor t = BlockwiseQuantizer.builder().optDoubleQuant(false).build()
                .quantize(new float[] {Float.MIN_VALUE, 0f, -0f}, new long[] {3});
        assertEquals((byte) 0xF0, t.packed()[0]);
        assertEquals((byte) 0x00, t.packed()[1]);
    }
}
