package io.qlora4j.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class BnbStateDictTest {
    private static final String KEY = "model.layers.0.self_attn.q_proj.weight";

    private static float[] randomWeights(int n) {
        Random r = new Random(5);
        float[] w = new float[n];
        for (int i = 0; i < n; i++) {
            w[i] = (float) r.nextGaussian();
        }
        return w;
    }

    private static Map<String, BnbStateDict.Entry> byKey(List<BnbStateDict.Entry> entries) {
        Map<String, BnbStateDict.Entry> m = new HashMap<>();
        entries.forEach(e -> m.put(e.key(), e));
        return m;
    }

    @Test
    void doubleQuantizedLayoutHasTheSixKeysTransformersSaves() {
        QuantizedTensor t = BlockwiseQuantizer.builder().build().quantize(randomWeights(64 * 130), new long[] {130, 64});
        Map<String, BnbStateDict.Entry> m = byKey(BnbStateDict.entries(KEY, t, "bfloat16"));
        assertEquals(6, m.size());
        assertArrayEquals(new long[] {64 * 130 / 2, 1}, m.get(KEY).shape());
        assertEquals("U8", m.get(KEY + ".absmax").dtype());
        assertArrayEquals(new long[] {130}, m.get(KEY + ".absmax").shape());
        assertArrayEquals(new long[] {16}, m.get(KEY + ".quant_map").shape());
        assertArrayEquals(new long[] {1}, m.get(KEY + ".nested_absmax").shape());
        assertArrayEquals(new long[] {256}, m.get(KEY + ".nested_quant_map").shape());
        String json = new String(m.get(KEY + ".quant_state.bitsandbytes__nf4").data(), StandardCharsets.UTF_8);
        assertEquals("{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [130, 64], "
                + "\"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": "
                + PythonFloat.repr(t.doubleQuant().offset()) + "}", json);
    }

    @Test
    void plainLayoutWritesFloatAbsmaxAndShortJson() {
        QuantizedTensor t = BlockwiseQuantizer.builder().optType(QuantType.FP4).optDoubleQuant(false).build()
                .quantize(randomWeights(96), new long[] {3, 32});
        Map<String, BnbStateDict.Entry> m = byKey(BnbStateDict.entries(KEY, t, "float16"));
        assertEquals(4, m.size());
        assertEquals("F32", m.get(KEY + ".absmax").dtype());
        assertEquals("{\"quant_type\": \"fp4\", \"blocksize\": 64, \"dtype\": \"float16\", \"shape\": [3, 32]}",
                new String(m.get(KEY + ".quant_state.bitsandbytes__fp4").data(), StandardCharsets.UTF_8));
    }

    @Test
    void readGivesBackTheSameTensor() throws Exception {
        for (boolean dq : new boolean[] {true, false}) {
            QuantizedTensor t = BlockwiseQuantizer.builder().optDoubleQuant(dq).build()
                    .quantize(randomWeights(64 * 300 + 7), new long[] {64 * 300 + 7});
            Map<String, BnbStateDict.Entry> m = byKey(BnbStateDict.entries(KEY, t, "float32"));
            assertEquals(QuantType.NF4, BnbStateDict.detect(KEY, m::containsKey));
            assertEquals(t, BnbStateDict.read(KEY, QuantType.NF4, m::get));
            assertEquals("float32", BnbStateDict.originalDtype(KEY, QuantType.NF4, m::get));
        }
        assertNull(BnbStateDict.detect(KEY, k -> false));
    }

    /** A NaN or infinite absmax, nested or plain, is named where it is stored, not left to make the loss NaN. */
    @Test
    void nonFiniteAbsmaxIsNamedWithItsElement() {
        for (boolean dq : new boolean[] {true, false}) {
            QuantizedTensor t = BlockwiseQuantizer.builder().optDoubleQuant(dq).build()
                    .quantize(randomWeights(128), new long[] {2, 64});
            Map<String, BnbStateDict.Entry> m = byKey(BnbStateDict.entries(KEY, t, "float32"));
            String key = KEY + (dq ? ".nested_absmax" : ".absmax");
            BnbStateDict.Entry e = m.get(key);
            byte[] data = e.data().clone();
            ByteBuffer.wrap(data).order(ByteOrder.LITTLE_ENDIAN).putFloat(0, dq ? Float.NaN : Float.POSITIVE_INFINITY);
            m.put(key, new BnbStateDict.Entry(key, e.dtype(), e.shape(), data));
            assertEquals(key + ": holds " + (dq ? "NaN" : "Infinity") + " at element 0; expected finite numbers",
                    assertThrows(QuantFormatException.class, () -> BnbStateDict.read(KEY, QuantType.NF4, m::get))
                            .getMessage());
        }
    }

    @Test
    void missingEntryAndForeignCodeBookAreNamed() {
        QuantizedTensor t = BlockwiseQuantizer.builder().build().quantize(randomWeights(128), new long[] {2, 64});
        Map<String, BnbStateDict.Entry> m = byKey(BnbStateDict.entries(KEY, t, "float32"));
        m.remove(KEY + ".nested_absmax");
        assertEquals(KEY + ".nested_absmax: missing (a bitsandbytes 4-bit weight needs it)",
                assertThrows(QuantFormatException.class, () -> BnbStateDict.read(KEY, QuantType.NF4, m::get)).getMessage());
        Map<String, BnbStateDict.Entry> fp4Map = byKey(BnbStateDict.entries(KEY, t, "float32"));
        fp4Map.put(KEY + ".quant_map", BnbStateDict.entries(KEY,
                BlockwiseQuantizer.builder().optType(QuantType.FP4).build().quantize(randomWeights(128), new long[] {2, 64}),
                "float32").get(2));
        assertEquals(KEY + ".quant_map: differs from the nf4 code book; custom code books are not supported",
                assertThrows(QuantFormatException.class, () -> BnbStateDict.read(KEY, QuantType.NF4, fp4Map::get)).getMessage());
    }
}
