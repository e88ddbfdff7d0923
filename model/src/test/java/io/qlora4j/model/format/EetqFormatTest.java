package io.qlora4j.model.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.checkpoint.TinyModels;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.HalfFloats;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * EETQ's codes and scales on hand-derived vectors (EETQ's {@code symmetric_quantize}: float16 weight, scale
 * {@code float16(absmax / 128)}, codes {@code round(w / (absmax / 128))} half away from zero, clamped to
 * [-128, 127]), the device weight against the host's, and the refusals.
 */
class EetqFormatTest {
    private static final EetqFormat EETQ = new EetqFormat();

    @TempDir
    Path dir;

    private static EetqFormat.Weight quantize(int out, float... w) throws ModelException {
        return (EetqFormat.Weight) EETQ.quantize(FloatSource.of(w), new long[] {out, w.length / out});
    }

    private static float scale(EetqFormat.Weight w, int row) {
        return HalfFloats.f16ToFloat(w.scales()[row]);
    }

    @Test
    void theReferenceVectorCodesPerOutputChannelWithAbsmaxOver128() throws Exception {
        // QUANT-OTFQ's EETQ vector: both channels have absmax 1, so scale 1/128
        EetqFormat.Weight w = quantize(2, 0.5f, -1f, 0.3f, 1f, 2.5f / 128, -1.5f / 128, 0f, 1f);
        assertArrayEquals(new byte[] {64, -128, 38, 127, 3, -2, 0, 127}, w.codes(),
                "f16(0.3) * 128 = 38.375 -> 38; 2.5 -> 3 away from zero; +absmax -> 128 -> clamped to 127");
        assertEquals(0x1p-7f, scale(w, 0));
        assertEquals(0x1p-7f, scale(w, 1));
        float[] row0 = new float[4];
        System.arraycopy(w.dequantize(), 0, row0, 0, 4);
        assertArrayEquals(new float[] {0.5f, -1f, 0.296875f, 0.9921875f}, row0);
    }

    @Test
    void tiesRoundHalfAwayFromZeroOnBothSides() throws Exception {
        float u = 0x1p-7f; // absmax 1: w / scale = w * 128
        EetqFormat.Weight w = quantize(1, 1f, 0.5f * u, -0.5f * u, 1.5f * u, -1.5f * u, 2.5f * u, -2.5f * u, 0f);
        assertArrayEquals(new byte[] {127, 1, -1, 2, -2, 3, -3, 0}, w.codes(),
                "half to even would give 0, 0, 2, -2, 2, -2; Java's Math.round 1, 0, 2, -1, 3, -2");
    }

    @Test
    void theNegativeAbsmaxCodesMinus128AndThePositiveOneClampsTo127() throws Exception {
        EetqFormat.Weight w = quantize(2, -3f, 3f, -2f, 1f);
        assertArrayEquals(new byte[] {-128, 127, -128, 64}, w.codes());
        assertEquals(3f / 128, scale(w, 0));
        assertArrayEquals(new float[] {-3f, 3f * 127 / 128, -2f, 1f}, w.dequantize());
    }

    @Test
    void theWeightIsRoundedToFloat16BeforeItIsCoded() throws Exception {
        // 2.5/128 - 2^-18 rounds to the float16 2.5/128 (a quarter ulp away), a tie that codes 3; unrounded it is 2
        EetqFormat.Weight w = quantize(1, 1f, 2.5f / 128 - 0x1p-18f);
        assertArrayEquals(new byte[] {127, 3}, w.codes());
    }

    @Test
    void aScaleBelowFloat16sNormalRangeRoundsToEvenWhileCodesUseTheUnroundedOne() throws Exception {
        // absmax 2^-8 (1 + 2^-10): absmax / 128 = 512.5 subnormal steps of 2^-24, a tie that rounds to 512 = 2^-15
        float a = 0x1p-8f * (1 + 0x1p-10f);
        // absmax 2^-8 (1 + 3 * 2^-10): 513.5 steps, rounded to the even 514
        float b = 0x1p-8f * (1 + 3 * 0x1p-10f);
        EetqFormat.Weight w = quantize(2, a, 129 * 0x1p-16f, b, -b);
        assertEquals(0x1p-15f, scale(w, 0));
        assertEquals(514 * 0x1p-24f, scale(w, 1));
        // 129 * 2^-16 / (2^-15 (1 + 2^-10)) = 64.44 -> 64 with the unrounded scale; the rounded one would give 64.5 -> 65
        assertArrayEquals(new byte[] {127, 64, 127, -128}, w.codes());
        assertArrayEquals(new float[] {127 * 0x1p-15f, 64 * 0x1p-15f, 127 * 514 * 0x1p-24f, -128 * 514 * 0x1p-24f},
                w.dequantize());
    }

    @Test
    void anAllZeroChannelHasScaleZeroAndCodes127() throws Exception {
        EetqFormat.Weight w = quantize(2, 0f, 0f, 0f, 1f, 0.5f, -1f);
        assertArrayEquals(new byte[] {127, 127, 127, 127, 64, -128}, w.codes(), "0 / 0 is NaN; min(127, NaN) is 127");
        assertEquals(0f, scale(w, 0));
        assertArrayEquals(new float[] {0f, 0f, 0f, 127f / 128, 0.5f, -1f}, w.dequantize());
        assertEquals(9 + 2 * 3, EETQ.storedBytes(new long[] {3, 3}), "a byte per code, a float16 scale per channel");
    }

    @Test
    void aValueBeyondFloat16sRangeAndAWeightThatIsNotAMatrixAreRefused() {
        ModelException big = assertThrows(ModelException.class, () -> quantize(2, 1f, 2f, 70000f, 1f));
        assertEquals("EETQ: row 1 holds a value beyond float16's range (|w| >= 65520) or NaN; EETQ scales each"
                + " output channel by its float16 absmax", big.getMessage());
        ModelException flat = assertThrows(ModelException.class,
                () -> EETQ.quantize(FloatSource.of(new float[4]), new long[] {4}));
        assertEquals("EETQ: a weight is [out, in] of at most 2^31 elements, got [4]", flat.getMessage());
    }

    @Test
    void theDeviceWeightIsTheHostsExactlyInFloat32AndItsFloat16RoundingInFloat16() throws Exception {
        Random random = new Random(11);
        float[] values = new float[24 * 40];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) (random.nextGaussian() * 0.05);
        }
        EetqFormat.Weight w = quantize(24, values);
        float[] host = w.dequantize();
        for (int i = 0; i < host.length; i++) {
            // an 8-bit code times an 11-bit float16 scale: exact in float32
            assertEquals((double) w.codes()[i] * scale(w, i / 40), host[i], 0.0, "element " + i);
        }
        try (NDManager m = NDManager.newBaseManager(); BaseLinear layer = w.upload(null, m)) {
            assertArrayEquals(host, layer.withWeight(DataType.FLOAT32, NDArray::toFloatArray));
            float[] half = layer.withWeight(DataType.FLOAT16, d -> d.toType(DataType.FLOAT32, false).toFloatArray());
            for (int i = 0; i < host.length; i++) {
                assertEquals(HalfFloats.f16ToFloat(HalfFloats.floatToF16(host[i])), half[i], "element " + i);
            }
        }
    }

    @Test
    void theRegistryChoosesEetqAtEightBitsAndRefusesItsCheckpointsByName() throws Exception {
        assertEquals(EETQ, BaseFormats.fromKeys(new FormatKeys("eetq", 8, Map.of())));
        assertEquals(EETQ, BaseFormats.fromKeys(FormatKeys.of(EETQ.keys())));
        ModelException four = assertThrows(ModelException.class,
                () -> BaseFormats.fromKeys(new FormatKeys("eetq", 4, Map.of())));
        assertEquals("quantization_bit 4 is not supported by quantization_method eetq (allowed: 8)", four.getMessage());
        assertEquals(EetqFormat.REFUSAL, BaseFormats.checkpointRefusal(EETQ));
        assertNull(BaseFormats.checkpointRefusal(Bnb8bitFormat.DEFAULT));

        Files.writeString(dir.resolve("config.json"), "{\"model_type\": \"llama\", \"quantization_config\": "
                + new ObjectMapper().writeValueAsString(EETQ.quantizationConfig("float16")) + "}");
        ModelException stored = assertThrows(ModelException.class, () -> BaseFormats.stored(dir));
        assertEquals(dir.resolve("config.json") + ": quantization_config: quant_method eetq: EETQ checkpoints are not"
                + " implemented: EETQ saves its int8 weight in the tile layout of the GPU architecture that quantized it"
                + " (sm70, or sm75 to sm89), which config.json does not record; qlora4j quantizes to EETQ on the fly"
                + " from a float checkpoint (train, eval, generate)", stored.getMessage());
        assertEquals("{\"modules_to_not_convert\":null,\"quant_method\":\"eetq\",\"weights\":\"int8\"}",
                EETQ.quantizationConfig("float16").toString(), "transformers' EetqConfig().to_dict()");
    }

    @Test
    void aMisshapenProjectionIsRefusedNamingTheTensor() throws Exception {
        Path tiny = TinyModels.writeTinyModel(dir.resolve("source"));
        Path bad = dir.resolve("bad");
        Files.createDirectories(bad);
        Files.copy(tiny.resolve("config.json"), bad.resolve("config.json"));
        String name = "model.layers.0.self_attn.q_proj.weight";
        try (SafetensorsReader reader = SafetensorsReader.open(tiny);
                SafetensorsWriter writer = SafetensorsWriter.builder(bad).build()) {
            for (TensorInfo t : reader.tensors()) {
                long[] shape = t.name().equals(name) ? new long[] {TinyModels.HIDDEN / 2, 2 * TinyModels.HIDDEN}
                        : t.shape();
                writer.addFloats(t.name(), t.dtype(), shape, reader.floats(t.name()));
            }
        }
        try (NDManager m = NDManager.newBaseManager()) {
            ModelException e = assertThrows(ModelException.class,
                    () -> ModelLoader.builder().optFormat(EETQ).build().load(bad, m));
            assertEquals(bad.resolve("model.safetensors") + ": tensor " + name + " has shape [32, 128], expected [64, 64]"
                    + " for this config", e.getMessage());
        }
        assertEquals(List.of("p.weight", "p.weight_scales"), EETQ.storedKeys(null, "p"));
    }
}
