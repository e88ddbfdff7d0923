package io.qlora4j.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

class QuantizedTensorTest {

    @Test
    void bitsPerParameterIs4point5WithoutAnd4point127WithDoubleQuant() {
        float[] data = new float[64 * 256 * 2];
        for (int i = 0; i < data.length; i++) {
            data[i] = (float) Math.sin(i);
        }
        long[] shape = {128, 256};
        QuantizedTensor plain = BlockwiseQuantizer.builder().optDoubleQuant(false).build().quantize(data, shape);
        QuantizedTensor dq = BlockwiseQuantizer.builder().optDoubleQuant(true).build().quantize(data, shape);
        // 4 + 32/64
        assertEquals(4.5, plain.bitsPerParameter());
        assertEquals(16384 + 4 * 512, plain.bytes());
        // 4 + 8/64 + 32/(64*256) = 4.126953125
        assertEquals(4.127, dq.bitsPerParameter(), 5e-4);
        assertEquals(4.126953125, dq.bitsPerParameter());
        assertEquals(16384 + 512 + 4 * 2, dq.bytes());
        assertEquals(32768, dq.numel());
        assertEquals(512, dq.blocks());
    }

    @Test
    void constructorRejectsWrongPackedLength() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new QuantizedTensor(QuantType.NF4, new long[] {3, 3}, 64, new byte[4], new float[1], null));
        assertTrue(e.getMessage().contains("expected 5"), e.getMessage());
        assertTrue(e.getMessage().contains("[3, 3]"), e.getMessage());
    }

    @Test
    void constructorRequiresExactlyOneScaleForm() {
        DoubleQuantizedScales dq = new DoubleQuantizedScales(new byte[1], new float[1], 0f, 256,
                DynamicMap.signed().values());
        assertThrows(IllegalArgumentException.class,
                () -> new QuantizedTensor(QuantType.NF4, new long[] {3}, 64, new byte[2], null, null));
        IllegalArgumentException both = assertThrows(IllegalArgumentException.class,
                () -> new QuantizedTensor(QuantType.NF4, new long[] {3}, 64, new byte[2], new float[1], dq));
        assertTrue(both.getMessage().contains("both"), both.getMessage());
    }

    @Test
    void constructorRejectsWrongScaleCountAndBlocksize() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new QuantizedTensor(QuantType.FP4, new long[] {65}, 64, new byte[33], new float[1], null));
        assertTrue(e.getMessage().contains("expected 2"), e.getMessage());
        assertThrows(IllegalArgumentException.class,
                () -> new QuantizedTensor(QuantType.FP4, new long[] {65}, 100, new byte[33], new float[1], null));
        assertThrows(IllegalArgumentException.class,
                () -> new DoubleQuantizedScales(new byte[300], new float[1], 0f, 256, new float[256]));
        assertThrows(IllegalArgumentException.class,
                () -> new DoubleQuantizedScales(new byte[3], new float[1], 0f, 256, new float[16]));
    }

    @Test
    void equalityComparesArrayContents() {
        QuantizedTensor a = new QuantizedTensor(QuantType.NF4, new long[] {3}, 64, new byte[] {1, 2}, new float[] {1f}, null);
        QuantizedTensor b = new QuantizedTensor(QuantType.NF4, new long[] {3}, 64, new byte[] {1, 2}, new float[] {1f}, null);
        QuantizedTensor c = new QuantizedTensor(QuantType.NF4, new long[] {3}, 64, new byte[] {1, 3}, new float[] {1f}, null);
        assertEquals(a, b);
        assertEquals(a.hashCode(), b.hashCode());
        assertNotEquals(a, c);
    }

    @Test
    void toStringIsCompact() {
        QuantizedTensor t = new QuantizedTensor(QuantType.NF4, new long[] {64}, 64, new byte[32], new float[1], null);
        assertEquals("QuantizedTensor[NF4, shape=[64], blocksize=64, 36 bytes, 4.500 bits/param]", t.toString());
    }
}
