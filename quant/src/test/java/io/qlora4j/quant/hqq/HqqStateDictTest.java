package io.qlora4j.quant.hqq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.quant.BnbStateDict.Entry;
import io.qlora4j.quant.HalfFloats;
import io.qlora4j.quant.QuantFormatException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

class HqqStateDictTest {
    private static final String PREFIX = "model.layers.0.self_attn.q_proj";

    private static Map<String, Entry> byKey(List<Entry> entries) {
        Map<String, Entry> m = new HashMap<>();
        entries.forEach(e -> m.put(e.key(), e));
        return m;
    }

    private static HqqTensor handDerived() {
        float[] w = {-1f, -0.5f, 0f, 0.5f, 1f, 0.25f, -0.25f, 0.75f};
        return HqqQuantizer.builder(2).optGroupSize(8).optOptimize(false).build().quantize(w, new long[] {8, 1});
    }

    @Test
    void writesHqqLinearsEncodedStateDict() {
        Map<String, Entry> m = byKey(HqqStateDict.entries(PREFIX, handDerived()));
        assertEquals(19, m.size());
        assertEquals(HqqStateDict.keys(PREFIX).size(), m.size());
        Entry codes = m.get(PREFIX + ".W_q");
        assertEquals("U8", codes.dtype());
        assertArrayEquals(new long[] {2, 1}, codes.shape());
        assertArrayEquals(new byte[] {0x2D, 0x6B}, codes.data());
        assertArrayEquals(new byte[] {2, 0, 0, 0}, m.get(PREFIX + ".nbits").data());
        assertEquals("I32", m.get(PREFIX + ".nbits").dtype());
        assertArrayEquals(new long[0], m.get(PREFIX + ".nbits").shape());
        assertArrayEquals(new byte[] {8, 0, 0, 0}, m.get(PREFIX + ".group_size").data());
        assertArrayEquals(new byte[] {8, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0}, m.get(PREFIX + ".shape").data());
        assertEquals("I64", m.get(PREFIX + ".shape").dtype());
        assertEquals("2bit_u8", new String(m.get(PREFIX + ".packing").data(), StandardCharsets.US_ASCII));
        assertEquals("torch.uint8", new String(m.get(PREFIX + ".unpack_view_dtype").data(), StandardCharsets.US_ASCII));
        assertEquals("torch.float32", new String(m.get(PREFIX + ".compute_dtype").data(), StandardCharsets.US_ASCII));
        assertArrayEquals(new long[] {1, 1}, m.get(PREFIX + ".scale").shape());
        assertEquals(1f / 1.5f, ByteBuffer.wrap(m.get(PREFIX + ".scale").data()).order(ByteOrder.LITTLE_ENDIAN).getFloat());
        assertEquals(1.5f, ByteBuffer.wrap(m.get(PREFIX + ".zero").data()).order(ByteOrder.LITTLE_ENDIAN).getFloat());
        for (String flag : new String[] {"encoded_state_dict", "stores_quant_config", "channel_wise"}) {
            assertArrayEquals(new byte[] {1}, m.get(PREFIX + "." + flag).data(), flag);
        }
        for (String flag : new String[] {"view_as_float", "quant_scale", "quant_zero", "offload_meta", "optimize",
                "round_zero"}) {
            assertArrayEquals(new byte[] {0}, m.get(PREFIX + "." + flag).data(), flag);
            assertEquals("U8", m.get(PREFIX + "." + flag).dtype());
        }
    }

    @Test
    void threeBitCodesAreInt32() {
        float[] w = HqqQuantizerTest.lcgWeights(64 * 16, 1, 26);
        HqqTensor t = HqqQuantizer.builder(3).build().quantize(w, new long[] {64, 16});
        Entry codes = byKey(HqqStateDict.entries(PREFIX, t)).get(PREFIX + ".W_q");
        assertEquals("I32", codes.dtype());
        assertArrayEquals(new long[] {7, 16}, codes.shape());
    }

    @Test
    void readsBackWhatItWritesForEveryWidthAndAxis() throws QuantFormatException {
        float[] w = HqqQuantizerTest.lcgWeights(128 * 64, 2, 26);
        for (int axis = 0; axis < 2; axis++) {
            for (int bits : HqqParams.BITS) {
                HqqTensor t = HqqQuantizer.builder(bits).optAxis(axis).build().quantize(w, new long[] {128, 64});
                Map<String, Entry> m = byKey(HqqStateDict.entries(PREFIX, t));
                assertEquals(t, HqqStateDict.read(PREFIX, m::get), bits + "-bit axis " + axis);
            }
        }
    }

    @Test
    void widensSixteenBitScalesAndZeros() throws QuantFormatException {
        Map<String, Entry> m = byKey(HqqStateDict.entries(PREFIX, handDerived()));
        // bf16(1/1.5) = 0.66796875 and f16(1.5) as the upstream bf16 / fp16 checkpoints hold them
        m.put(PREFIX + ".scale", new Entry(PREFIX + ".scale", "BF16", new long[] {1, 1}, shortBytes(
                HalfFloats.floatToBf16(1f / 1.5f))));
        m.put(PREFIX + ".zero", new Entry(PREFIX + ".zero", "F16", new long[] {1, 1}, shortBytes(
                HalfFloats.floatToF16(1.5f))));
        HqqTensor t = HqqStateDict.read(PREFIX, m::get);
        assertArrayEquals(new float[] {0.66796875f}, t.scale());
        assertArrayEquals(new float[] {1.5f}, t.zero());
    }

    @Test
    void refusesACorruptCodeShapeNamingTheTensorAndTheExpectation() {
        Map<String, Entry> m = byKey(HqqStateDict.entries(PREFIX, handDerived()));
        m.put(PREFIX + ".W_q", new Entry(PREFIX + ".W_q", "U8", new long[] {3, 1}, new byte[3]));
        QuantFormatException e = assertThrows(QuantFormatException.class, () -> HqqStateDict.read(PREFIX, m::get));
        assertEquals(PREFIX + ".W_q: U8 [3, 1], expected U8 [2, 1] for 2-bit shape [8, 1] in groups of 8 along axis 0",
                e.getMessage());
    }

    @Test
    void refusesAPackingThatDisagreesWithTheBits() {
        Map<String, Entry> m = byKey(HqqStateDict.entries(PREFIX, handDerived()));
        m.put(PREFIX + ".packing", new Entry(PREFIX + ".packing", "U8", new long[] {7},
                "4bit_u8".getBytes(StandardCharsets.US_ASCII)));
        QuantFormatException e = assertThrows(QuantFormatException.class, () -> HqqStateDict.read(PREFIX, m::get));
        assertEquals(PREFIX + ".packing: '4bit_u8' does not match nbits 2 (expected 2bit_u8)", e.getMessage());
    }

    @Test
    void refusesUnsupportedBitsAndQuantizedMetadataByName() {
        Map<String, Entry> m = byKey(HqqStateDict.entries(PREFIX, handDerived()));
        m.put(PREFIX + ".nbits", new Entry(PREFIX + ".nbits", "I32", new long[0], new byte[] {7, 0, 0, 0}));
        QuantFormatException e = assertThrows(QuantFormatException.class, () -> HqqStateDict.read(PREFIX, m::get));
        assertTrue(e.getMessage().startsWith(PREFIX + ": HQQ does not support 7-bit codes"), e.getMessage());
        Map<String, Entry> q = byKey(HqqStateDict.entries(PREFIX, handDerived()));
        q.put(PREFIX + ".quant_zero", new Entry(PREFIX + ".quant_zero", "U8", new long[0], new byte[] {1}));
        e = assertThrows(QuantFormatException.class, () -> HqqStateDict.read(PREFIX, q::get));
        assertEquals(PREFIX + ".quant_zero: 1, but HQQ quant zero is not implemented (expected 0)", e.getMessage());
        Map<String, Entry> missing = byKey(HqqStateDict.entries(PREFIX, handDerived()));
        missing.remove(PREFIX + ".zero");
        e = assertThrows(QuantFormatException.class, () -> HqqStateDict.read(PREFIX, missing::get));
        assertEquals(PREFIX + ".zero: missing (an HQQ module needs it)", e.getMessage());
    }

    @Test
    void quantizationConfigIsWhatTransformersWrites() throws Exception {
        String json = new ObjectMapper().writeValueAsString(HqqStateDict.quantizationConfig(HqqParams.llamaFactory(4)));
        assertEquals("{\"quant_config\":{\"offload_meta\":false,\"scale_quant_params\":null,\"weight_quant_params\":"
                + "{\"axis\":0,\"channel_wise\":true,\"group_size\":64,\"nbits\":4,\"optimize\":true,\"round_zero\":true,"
                + "\"view_as_float\":false},\"zero_quant_params\":null},\"quant_method\":\"hqq\",\"skip_modules\":"
                + "[\"lm_head\"]}", json);
        assertEquals(HqqParams.llamaFactory(4),
                HqqStateDict.fromQuantizationConfig(HqqStateDict.quantizationConfig(HqqParams.llamaFactory(4))));
        assertEquals(new HqqParams(3, 128, 1, true, false), HqqStateDict.fromQuantizationConfig(
                new ObjectMapper().readTree("{\"quant_method\":\"hqq\",\"quant_config\":{\"weight_quant_params\":"
                        + "{\"nbits\":3,\"group_size\":128,\"axis\":1,\"optimize\":true,\"round_zero\":false}}}")));
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> HqqStateDict
                .fromQuantizationConfig(new ObjectMapper().readTree("{\"quant_method\":\"hqq\",\"quant_config\":"
                        + "{\"weight_quant_params\":{\"nbits\":1.58,\"group_size\":64}}}")));
        assertTrue(e.getMessage().contains("nbits 1.58 is not implemented"), e.getMessage());
    }

    private static byte[] shortBytes(short value) {
        return ByteBuffer.allocate(2).order(ByteOrder.LITTLE_ENDIAN).putShort(value).array();
    }
}
