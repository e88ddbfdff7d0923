package io.qlora4j.model.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.checkpoint.CheckpointQuantizer;
import io.qlora4j.model.checkpoint.TinyModels;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.hqq.HqqParams;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** HQQ through the base-format seam: job keys, checkpoints written and read back, and refusals naming the tensor. */
class HqqFormatTest {
    @TempDir
    Path dir;

    private static BaseFormat hqq(int bits, Map<String, Object> options) throws ModelException {
        return BaseFormats.fromKeys(new FormatKeys("hqq", bits, options));
    }

    @Test
    void keysChooseLlamaFactorysHqqConfigAndComeBackFromTheFormat() throws Exception {
        for (int bits : HqqParams.BITS) {
            BaseFormat f = hqq(bits, Map.of());
            assertEquals(new HqqFormat(new HqqParams(bits, 64, 0, true, bits == 4)), f);
            assertEquals(f, BaseFormats.fromKeys(FormatKeys.of(f.keys())));
        }
        BaseFormat wide = hqq(3, Map.of("hqq_group_size", "128"));
        assertEquals(new HqqFormat(new HqqParams(3, 128, 0, true, false)), wide);
        assertEquals("HQQ 3-bit, group 128 along axis 0", wide.describe());
        assertEquals(Map.of("quantization_method", "hqq", "quantization_bit", 3, "hqq_group_size", 128), wide.keys());
    }

    @Test
    void unsupportedBitsAndGroupSizesAreRefusedByName() {
        ModelException e = assertThrows(ModelException.class, () -> hqq(7, Map.of()));
        assertEquals("quantization_bit 7 is not supported by quantization_method hqq (allowed: 1, 2, 3, 4, 5, 6, 8)",
                e.getMessage());
        e = assertThrows(ModelException.class, () -> hqq(4, Map.of("hqq_group_size", 12)));
        assertEquals("hqq_group_size 12 is not a positive multiple of 8", e.getMessage());
    }

    @Test
    void quantizationConfigIsRecognisedAsTheSameFormat() throws Exception {
        BaseFormat f = hqq(2, Map.of("hqq_group_size", 32));
        assertEquals(f, BaseFormats.fromQuantizationConfig(f.quantizationConfig("bfloat16"), "config.json"));
        assertEquals("hqq", f.quantizationConfig("float32").path("quant_method").asText());
    }

    @Test
    void storedBytesAreWhatAQuantizedWeightHolds() throws Exception {
        Random r = new Random(4);
        float[] w = new float[96 * 64];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) r.nextGaussian() * 0.05f;
        }
        for (int bits : HqqParams.BITS) {
            BaseFormat f = hqq(bits, Map.of());
            StoredWeight s = f.quantize(FloatSource.of(w), new long[] {96, 64});
            assertEquals(f.storedBytes(new long[] {96, 64}), s.bytes(), bits + "-bit");
        }
        // 4 bits: half a byte per code plus two float32 per 64 elements
        assertEquals(5.0, hqq(4, Map.of()).bitsPerParameter(new long[] {96, 64}), 1e-12);
        // hqq packs 5- and 6-bit codes as 8-bit ones (Quantizer.bit_to_packing: "8bit_u8", bit packing a todo there):
        // a byte per code at 5, 6 and 8 bits alike, so 9 bits per parameter with the float32 scale and zero
        for (int bits : new int[] {5, 6, 8}) {
            assertEquals(9.0, hqq(bits, Map.of()).bitsPerParameter(new long[] {96, 64}), 1e-12, bits + "-bit");
        }
    }

    @Test
    void aQuantizedCheckpointLoadsToTheSameModelAsQuantizingOnTheFly() throws Exception {
        Path source = TinyModels.writeTinyModel(dir);
        for (int bits : new int[] {2, 3, 4, 8}) {
            BaseFormat f = hqq(bits, Map.of());
            Path out = dir.resolve("hqq" + bits);
            CheckpointQuantizer.builder(f).build().quantize(source, out);
            assertEquals(f, BaseFormats.stored(out));
            try (SafetensorsReader reader = SafetensorsReader.open(out)) {
                String prefix = "model.layers.0.mlp.down_proj";
                assertFalse(reader.contains(prefix + ".weight"));
                TensorInfo codes = reader.info(prefix + ".W_q");
                assertEquals(bits == 3 ? DType.I32 : DType.U8, codes.dtype());
                assertEquals(19, f.storedKeys(reader, prefix).size());
                assertTrue(reader.contains("lm_head.weight"), "lm_head is skipped");
            }
            try (NDManager m = NDManager.newBaseManager();
                    CausalLM stored = ModelLoader.builder().build().load(out, m);
                    CausalLM onTheFly = ModelLoader.builder().optFormat(f).build().load(source, m)) {
                assertArrayEquals(logits(onTheFly, m), logits(stored, m), bits + "-bit");
                assertTrue(stored.block(0).linear("self_attn.q_proj") instanceof QuantizedLinear);
            }
        }
    }

    @Test
    void aCorruptCodeTensorIsOneLineNamingTheFileTheTensorAndTheExpectation() throws Exception {
        String bad = "model.layers.0.self_attn.k_proj.W_q";
        Path corrupt = dir.resolve("corrupt");
        ModelException e = loadFails(corrupt, bad, (reader, writer) ->
                writer.addBytes(bad, DType.U8, new long[] {31, 64}, new byte[31 * 64]));
        assertEquals(corrupt.resolve("model.safetensors") + ": " + bad + ": U8 [31, 64], expected U8 [32, 64] for"
                + " 4-bit shape [64, 64] in groups of 64 along axis 0", e.getMessage());
    }

    /** A NaN scale is named where it is stored, not left to make the loss NaN. */
    @Test
    void aNonFiniteScaleIsOneLineNamingTheFileTheTensorAndTheElement() throws Exception {
        String bad = "model.layers.0.self_attn.k_proj.scale";
        Path corrupt = dir.resolve("corrupt");
        ModelException e = loadFails(corrupt, bad, (reader, writer) -> {
            float[] scale = reader.floats(bad);
            scale[3] = Float.NaN;
            writer.addFloats(bad, DType.F32, reader.info(bad).shape(), scale);
        });
        assertEquals(corrupt.resolve("model.safetensors") + ": " + bad + ": holds NaN at element 3; expected finite"
                + " numbers", e.getMessage());
    }

    /** Rewrites one tensor of the checkpoint. */
    private interface Corruption {
        void write(SafetensorsReader reader, SafetensorsWriter writer) throws ModelException;
    }

    /** Writes a 4-bit HQQ checkpoint of the tiny model into {@code corrupt} with {@code bad} as {@code how} writes it. */
    private ModelException loadFails(Path corrupt, String bad, Corruption how) throws Exception {
        Path source = TinyModels.writeTinyModel(dir);
        Path out = dir.resolve("hqq");
        CheckpointQuantizer.builder(hqq(4, Map.of())).build().quantize(source, out);
        Files.createDirectories(corrupt);
        Files.copy(out.resolve("config.json"), corrupt.resolve("config.json"));
        Files.copy(out.resolve("tokenizer.json"), corrupt.resolve("tokenizer.json"));
        try (SafetensorsReader reader = SafetensorsReader.open(out);
                SafetensorsWriter writer = SafetensorsWriter.builder(corrupt).build()) {
            for (TensorInfo t : reader.tensors()) {
                if (t.name().equals(bad)) {
                    how.write(reader, writer);
                } else {
                    writer.addFrom(reader, t.name());
                }
            }
        }
        try (NDManager m = NDManager.newBaseManager()) {
            return assertThrows(ModelException.class, () -> ModelLoader.builder().build().load(corrupt, m));
        }
    }

    @Test
    void aWeightThatDoesNotSplitIntoGroupsIsNamed() throws Exception {
        Path source = TinyModels.writeTinyModel(dir);
        try (NDManager m = NDManager.newBaseManager()) {
            ModelException e = assertThrows(ModelException.class, () -> ModelLoader.builder()
                    .optFormat(hqq(4, Map.of("hqq_group_size", 80))).build().load(source, m));
            assertEquals(source.resolve("model.safetensors") + ": tensor model.layers.0.self_attn.q_proj.weight: of shape"
                    + " [64, 64] (4096 elements) does not split into groups of 80 (hqq_group_size)", e.getMessage());
        }
    }

    @Test
    void aCheckpointOfAnotherMethodIsRefusedNamingBoth() throws Exception {
        Path source = TinyModels.writeTinyModel(dir);
        Path out = dir.resolve("hqq");
        CheckpointQuantizer.builder(hqq(4, Map.of())).build().quantize(source, out);
        ModelException e = assertThrows(ModelException.class, () -> BaseFormats.forModel(out, BaseFormats.QLORA));
        assertTrue(e.getMessage().contains("stored in HQQ 4-bit, group 64 along axis 0 (quantization_config), but the job"
                + " asks for quantization_method bnb, quantization_bit 4"), e.getMessage());
        assertEquals("hqq", new ObjectMapper().readTree(out.resolve("config.json").toFile())
                .path("quantization_config").path("quant_method").asText());
    }

    private static float[] logits(CausalLM model, NDManager m) {
        long[] ids = {1, 7, 3, 49, 12, 0};
        return model.forward(m.create(ids, new Shape(1, ids.length)), null).toFloatArray();
    }
}
