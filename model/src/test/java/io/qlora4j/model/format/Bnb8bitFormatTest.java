package io.qlora4j.model.format;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;

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
import io.qlora4j.quant.HalfFloats;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** bitsandbytes 8-bit checkpoints: what quantize writes, that they load back, and every refusal one line. */
class Bnb8bitFormatTest {
    private static final String DOWN = "model.layers.0.mlp.down_proj";

    @TempDir
    Path dir;

    private Path int8Checkpoint() throws Exception {
        Path out = dir.resolve("int8");
        CheckpointQuantizer.builder(Bnb8bitFormat.DEFAULT).build().quantize(TinyModels.writeTinyModel(dir), out);
        return out;
    }

    @Test
    void quantizeWritesLinear8bitLtEntriesAndTransformersEightBitConfig() throws Exception {
        Path out = int8Checkpoint();
        try (SafetensorsReader original = SafetensorsReader.open(dir.resolve("tiny"));
                SafetensorsReader q = SafetensorsReader.open(out)) {
            TensorInfo weight = q.info(DOWN + ".weight");
            assertEquals(DType.I8, weight.dtype());
            assertArrayEquals(new long[] {TinyModels.HIDDEN, TinyModels.INTER}, weight.shape());
            assertEquals(DType.F32, q.info(DOWN + ".SCB").dtype());
            assertArrayEquals(new long[] {TinyModels.HIDDEN}, q.info(DOWN + ".SCB").shape());
            assertEquals(DType.U8, q.info(DOWN + ".weight_format").dtype());
            assertArrayEquals(new long[0], q.info(DOWN + ".weight_format").shape());
            assertArrayEquals(new byte[] {0}, q.u8(DOWN + ".weight_format"));
            // SCB: the float16 row absmax; CB: rint(w16 * f32(f32(1 / SCB) * 127)), half to even
            float[] w = original.floats(DOWN + ".weight");
            float[] scb = q.floats(DOWN + ".SCB");
            byte[] cb = q.u8(DOWN + ".weight");
            int in = TinyModels.INTER;
            for (int r = 0; r < TinyModels.HIDDEN; r++) {
                float max = 0;
                for (int c = 0; c < in; c++) {
                    max = Math.max(max, Math.abs(HalfFloats.f16ToFloat(HalfFloats.floatToF16(w[r * in + c]))));
                }
                assertEquals(max, scb[r], "SCB[" + r + "]");
                for (int c = 0; c < in; c++) {
                    float scaled = HalfFloats.f16ToFloat(HalfFloats.floatToF16(w[r * in + c])) * ((1f / max) * 127f);
                    assertEquals((byte) Math.rint(scaled), cb[r * in + c], "CB[" + r + ", " + c + "]");
                }
            }
        }
        assertEquals("{\"_load_in_4bit\":false,\"_load_in_8bit\":true,\"bnb_4bit_compute_dtype\":\"float32\","
                + "\"bnb_4bit_quant_storage\":\"uint8\",\"bnb_4bit_quant_type\":\"fp4\",\"bnb_4bit_use_double_quant\":false,"
                + "\"llm_int8_enable_fp32_cpu_offload\":false,\"llm_int8_has_fp16_weight\":false,"
                + "\"llm_int8_skip_modules\":null,\"llm_int8_threshold\":6.0,\"load_in_4bit\":false,\"load_in_8bit\":true,"
                + "\"quant_method\":\"bitsandbytes\"}",
                new ObjectMapper().readTree(out.resolve("config.json").toFile())
                        .get("quantization_config").toString());
        assertEquals(Bnb8bitFormat.DEFAULT, BaseFormats.stored(out));
    }

    @Test
    void prequantizedCheckpointLoadsToTheSameModelAsQuantizingOnTheFly() throws Exception {
        Path out = int8Checkpoint();
        long[] ids = {1, 7, 3, 49, 12, 0};
        try (NDManager m = NDManager.newBaseManager();
                CausalLM stored = ModelLoader.builder().build().load(out, m);
                CausalLM onTheFly = ModelLoader.builder().optFormat(new Bnb8bitFormat(0.0)).build()
                        .load(dir.resolve("tiny"), m)) {
            assertInstanceOf(QuantizedLinear.class, stored.block(0).linear("mlp.down_proj"));
            assertArrayEquals(onTheFly.forward(m.create(ids, new Shape(1, ids.length)), null).toFloatArray(),
                    stored.forward(m.create(ids, new Shape(1, ids.length)), null).toFloatArray());
        }
    }

    /** Copies {@code source} to {@code dir/name}, with {@code replaced} tensors written instead. */
    private Path rewrite(Path source, String name, Map<String, Object[]> replaced) throws Exception {
        Path target = dir.resolve(name);
        Files.createDirectories(target);
        Files.copy(source.resolve("config.json"), target.resolve("config.json"));
        try (SafetensorsReader r = SafetensorsReader.open(source);
                SafetensorsWriter w = SafetensorsWriter.builder(target).build()) {
            for (TensorInfo t : r.tensors()) {
                Object[] with = replaced.get(t.name());
                if (with == null) {
                    w.addFrom(r, t.name());
                } else {
                    w.addBytes(t.name(), (DType) with[0], (long[]) with[1], (byte[]) with[2]);
                }
            }
        }
        return target;
    }

    private ModelException loadFails(Path model) {
        return assertThrows(ModelException.class, () -> {
            try (NDManager m = NDManager.newBaseManager()) {
                ModelLoader.builder().build().load(model, m).close();
            }
        });
    }

    @Test
    void anScbOfTheWrongLengthIsOneLineNamingTheTensorAndTheExpectedShape() throws Exception {
        Path bad = rewrite(int8Checkpoint(), "bad", Map.of(DOWN + ".SCB", new Object[] {DType.F32, new long[] {63},
                new byte[4 * 63]}));
        assertEquals(bad.resolve("model.safetensors") + ": tensor " + DOWN + ".SCB has shape [63], expected [64] (one"
                + " absmax per output row of weight [64, 96])", loadFails(bad).getMessage());
    }

    @Test
    void codesThatAreNotInt8OrAGpuTileLayoutAreRefusedByName() throws Exception {
        Path good = int8Checkpoint();
        Path floats = rewrite(good, "f32", Map.of(DOWN + ".weight", new Object[] {DType.F32,
                new long[] {TinyModels.HIDDEN, TinyModels.INTER}, new byte[4 * TinyModels.HIDDEN * TinyModels.INTER]}));
        assertEquals(floats.resolve("model.safetensors") + ": tensor " + DOWN + ".weight is F32, expected I8 (int8 codes"
                + " [out, in] of an LLM.int8 weight)", loadFails(floats).getMessage());
        Path col32 = rewrite(good, "col32", Map.of(DOWN + ".weight_format", new Object[] {DType.U8, new long[0],
                new byte[] {1}}));
        assertEquals(col32.resolve("model.safetensors") + ": tensor " + DOWN + ".weight_format is [1], expected 0 (row);"
                + " the GPU tile layouts col32, col_turing and col_ampere are not supported", loadFails(col32).getMessage());
    }

    @Test
    void anEightBitCheckpointLoadedWithKeysNamingFourBitsIsRefusedNamingBoth() throws Exception {
        Path out = int8Checkpoint();
        ModelException e = assertThrows(ModelException.class, () -> {
            try (NDManager m = NDManager.newBaseManager()) {
                ModelLoader.builder().optFormat(BaseFormats.QLORA).build().load(out, m).close();
            }
        });
        assertEquals(out.resolve("config.json") + ": the checkpoint is stored in bitsandbytes LLM.int8, threshold 6.0"
                + " (quantization_config), but the job asks for quantization_method bnb, quantization_bit 4; leave"
                + " quantization_bit unset to load the checkpoint as stored", e.getMessage());
    }

    @Test
    void eightBitsPerCodePlusAFloat32ScalePerRow() {
        assertEquals(4096L * 4096 + 4 * 4096, Bnb8bitFormat.DEFAULT.storedBytes(new long[] {4096, 4096}));
        assertEquals(8 + 32.0 / 4096, Bnb8bitFormat.DEFAULT.bitsPerParameter(new long[] {4096, 4096}), 1e-12);
    }

    @Test
    void bothSpellingsAtEightBitsChooseItWithTheThreshold() throws Exception {
        assertEquals(new Bnb8bitFormat(4.5), BaseFormats.fromKeys(new FormatKeys("bitsandbytes", 8,
                Map.of("llm_int8_threshold", "4.5"))));
        assertEquals(Bnb8bitFormat.DEFAULT, BaseFormats.fromKeys(new FormatKeys("bnb", 8, Map.of())));
    }
}
