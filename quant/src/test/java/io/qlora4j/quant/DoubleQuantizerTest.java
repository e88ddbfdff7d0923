package io.qlora4j.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.math.BigDecimal;
import java.math.MathContext;
import java.util.Random;
import org.junit.jupiter.api.Test;

class DoubleQuantizerTest {

    private static final BlockwiseQuantizer DQ32 =
            BlockwiseQuantizer.builder().optBlocksize(32).optDoubleQuant(true).build();

    @Test
    void handDerivedScalesCodeAgainstTheSignedMap() {
        // four blocks with absmax 1, 2, 3, 4 -> offset 2.5, centred -1.5 -0.5 0.5 1.5,
        // nested absmax 1.5, reciprocal 1/1.5f = 0.6666667f -> -1.0, -0.33333334, 0.33333334, 1.0
        // nearest map entries: -1.0 -> code 0 (-0.99296874), +-1/3 -> +-0.33203125 (codes 47, 207),
        // 1.0 -> code 255
        float[] data = new float[128];
        for (int b = 0; b < 4; b++) {
            data[32 * b + 5] = (b % 2 == 0 ? 1 : -1) * (b + 1);
        }
        QuantizedTensor t = DQ32.quantize(data, new long[] {4, 32});
        DoubleQuantizedScales dq = t.doubleQuant();
        assertEquals(2.5f, dq.offset());
        assertArrayEquals(new float[] {1.5f}, dq.nestedAbsmax());
        assertArrayEquals(new byte[] {0, 47, (byte) 207, (byte) 255}, dq.codes());
        assertEquals(256, dq.nestedBlocksize());
        assertArrayEquals(DynamicMap.signed().values(), dq.nestedMap());
        float[] expected = {
            -0.99296874f * 1.5f + 2.5f, -0.33203125f * 1.5f + 2.5f, 0.33203125f * 1.5f + 2.5f, 1.0f * 1.5f + 2.5f,
        };
        assertArrayEquals(expected, dq.decode());
        assertArrayEquals(expected, t.scales());
    }

    @Test
    void decodedScalesAreWithinHalfTheLocalMapGapTimesNestedAbsmax() {
        Random rnd = new Random(5);
        int blocks = 600; // three nested blocks, the last one partial
        float[] data = new float[64 * blocks];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) (rnd.nextGaussian() * 0.02 * (1 + (i >> 6) % 7));
        }
        BlockwiseQuantizer plain = BlockwiseQuantizer.builder().optDoubleQuant(false).build();
        float[] absmax = plain.quantize(data, new long[] {data.length}).absmax();
        DoubleQuantizedScales dq = BlockwiseQuantizer.builder().build().quantize(data, new long[] {data.length}).doubleQuant();
        float[] map = dq.nestedMap();
        float[] decoded = dq.decode();
        assertEquals(3, dq.nestedAbsmax().length);
        for (int i = 0; i < blocks; i++) {
            int c = dq.codes()[i] & 0xFF;
            double below = c > 0 ? map[c] - map[c - 1] : 0;
            double above = c < 255 ? map[c + 1] - map[c] : 0;
            double bound = Math.max(below, above) / 2 * dq.nestedAbsmax()[i / 256] + 1e-6 * absmax[i];
            assertTrue(Math.abs(decoded[i] - absmax[i]) <= bound, "block " + i);
        }
    }

    @Test
    void offsetIsTheExactMeanRoundedOnceToFloat32() {
        Random rnd = new Random(9);
        float[] absmax = new float[10_000];
        BigDecimal sum = BigDecimal.ZERO;
        for (int i = 0; i < absmax.length; i++) {
            absmax[i] = (float) (0.01 + rnd.nextDouble() * 0.1);
            sum = sum.add(new BigDecimal(absmax[i]));
        }
        float exact = sum.divide(BigDecimal.valueOf(absmax.length), MathContext.DECIMAL128).floatValue();
        assertEquals(exact, DoubleQuantizer.mean(absmax));
        assertEquals(exact, DoubleQuantizer.quantize(absmax, 2).offset());
    }

    @Test
    void singleBlockTensorCodesItsZeroCentredScaleAsZero() {
        // one block: offset = absmax, centred value 0, nested absmax 0 -> the code of 0.0
        QuantizedTensor t = DQ32.quantize(new float[] {0.5f, -2f, 1f}, new long[] {3});
        assertEquals(2f, t.doubleQuant().offset());
        assertArrayEquals(new float[] {0f}, t.doubleQuant().nestedAbsmax());
        assertArrayEquals(new byte[] {127}, t.doubleQuant().codes());
        assertArrayEquals(new float[] {2f}, t.scales());
    }
}
