package io.qlora4j.model.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.Bnb4bitFormat;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.DoubleQuantizedScales;
import io.qlora4j.quant.QuantType;
import java.io.IOException;
import java.io.RandomAccessFile;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class CheckpointQuantizerTest {
    static final int HIDDEN = TinyModels.HIDDEN;
    static final int INTER = TinyModels.INTER;

    @TempDir
    Path dir;

    @Test
    void quantizesLayerLinearsAndCopiesEverythingElse() throws Exception {
        Path src = TinyModels.writeTinyModel(dir);
        Path out = dir.resolve("nf4");
        CheckpointQuantizer.Report report = CheckpointQuantizer.builder(BaseFormats.QLORA).build().quantize(src, out);
        assertEquals(7, report.quantizedTensors());
        assertEquals(12, report.tensors());
        assertEquals(4 * HIDDEN * HIDDEN + 3 * HIDDEN * INTER, report.quantizedParameters());

        try (SafetensorsReader original = SafetensorsReader.open(src);
                SafetensorsReader quantized = SafetensorsReader.open(out)) {
            for (TensorInfo info : original.tensors()) {
                if (!CheckpointQuantizer.isQuantizedLinear(info.name(), info.shape().length)) {
                    assertEquals(original.bytes(info.name()), quantized.bytes(info.name()), info.name());
                    assertEquals(info.dtype(), quantized.info(info.name()).dtype());
                }
            }
            String key = "model.layers.0.mlp.down_proj.weight";
            int n = HIDDEN * INTER;
            int blocks = n / 64;
            assertArrayEquals(new long[] {n / 2, 1}, quantized.info(key).shape());
            assertEquals(DType.U8, quantized.info(key).dtype());
            assertArrayEquals(new long[] {blocks}, quantized.info(key + ".absmax").shape());
            assertEquals(DType.U8, quantized.info(key + ".absmax").dtype());
            assertArrayEquals(new long[] {1}, quantized.info(key + ".nested_absmax").shape());
            assertArrayEquals(new long[] {256}, quantized.info(key + ".nested_quant_map").shape());
            assertArrayEquals(QuantType.NF4.codebook(), quantized.floats(key + ".quant_map"));

            // The JSON state, spaced as Python's json.dumps writes it; the offset is the mean block absmax.
            float[] w = original.floats(key);
            double sum = 0;
            for (int b = 0; b < blocks; b++) {
                float max = 0;
                for (int i = b * 64; i < b * 64 + 64; i++) {
                    max = Math.max(max, Math.abs(w[i]));
                }
                sum += max;
            }
            String json = new String(quantized.u8(key + ".quant_state.bitsandbytes__nf4"), StandardCharsets.UTF_8);
            String head = "{\"quant_type\": \"nf4\", \"blocksize\": 64, \"dtype\": \"bfloat16\", \"shape\": [" + HIDDEN
                    + ", " + INTER + "], \"nested_blocksize\": 256, \"nested_dtype\": \"float32\", \"nested_offset\": ";
            assertTrue(json.startsWith(head) && json.endsWith("}"), json);
            double offset = Double.parseDouble(json.substring(head.length(), json.length() - 1));
            assertEquals(sum / blocks, offset, 1e-6 * offset);

            // What a loader rebuilds from those entries dequantizes to the original within NF4's resolution.
            float[] back = BaseFormats.QLORA.read(quantized, "model.layers.0.mlp.down_proj").dequantize();
            float nested = quantized.floats(key + ".nested_absmax")[0];
            float[] scales = new DoubleQuantizedScales(quantized.u8(key + ".absmax"), new float[] {nested},
                    (float) offset, 256, quantized.floats(key + ".nested_quant_map")).decode();
            for (int b = 0; b < blocks; b++) {
                float max = 0;
                for (int i = b * 64; i < b * 64 + 64; i++) {
                    max = Math.max(max, Math.abs(w[i]));
                }
                // 8-bit scale: within half the widest gap of the signed dynamic map (0.9 / 64) of the nested absmax
                double scaleError = Math.abs(scales[b] - max);
                assertTrue(scaleError <= 0.5 * 0.9 / 64 * nested, "block " + b + " scale error " + scaleError);
                for (int i = b * 64; i < b * 64 + 64; i++) {
                    // half the widest NF4 gap (-1 to -0.6961928) of the true scale, plus the scale's own error
                    assertEquals(w[i], back[i], 0.152 * max + scaleError + 1e-7, key + "[" + i + "]");
                }
            }
        }
        JsonNode config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        JsonNode q = config.path("quantization_config");
        assertEquals("bitsandbytes", q.path("quant_method").asText());
        assertTrue(q.path("load_in_4bit").asBoolean());
        assertEquals("nf4", q.path("bnb_4bit_quant_type").asText());
        assertTrue(q.path("bnb_4bit_use_double_quant").asBoolean());
        assertEquals("bfloat16", q.path("bnb_4bit_compute_dtype").asText());
        assertEquals("uint8", q.path("bnb_4bit_quant_storage").asText());
        assertTrue(Files.exists(out.resolve("tokenizer.json")));
        assertTrue(report.bytesAfter() < report.bytesBefore());
    }

    @Test
    void withoutDoubleQuantizationBitsPerParameterIsFourAndAHalf() throws Exception {
        Path src = TinyModels.writeTinyModel(dir);
        CheckpointQuantizer.Report r = CheckpointQuantizer.builder(new Bnb4bitFormat(QuantType.NF4, 64, false)).build()
                .quantize(src, dir.resolve("out"));
        assertEquals(4.5, r.bitsPerParameter(), 1e-12);
        try (SafetensorsReader q = SafetensorsReader.open(dir.resolve("out"))) {
            assertEquals(DType.F32, q.info("model.layers.0.self_attn.q_proj.weight.absmax").dtype());
            assertFalse(q.contains("model.layers.0.self_attn.q_proj.weight.nested_absmax"));
        }
    }

    @Test
    void truncatedSourceLeavesNoOutputBehind() throws Exception {
        Path src = TinyModels.writeTinyModel(dir);
        Path file = src.resolve("model.safetensors");
        try (RandomAccessFile f = new RandomAccessFile(file.toFile(), "rw")) {
            f.setLength(f.length() - 100);
        }
        Path out = dir.resolve("out");
        ModelException e = assertThrows(ModelException.class, () -> CheckpointQuantizer.builder(BaseFormats.QLORA).build().quantize(src, out));
        assertTrue(e.getMessage().contains("model.safetensors"), e.getMessage());
        assertFalse(Files.exists(out));
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(1, left.count(), "only the source directory remains");
        }
    }

    @Test
    void refusesANonEmptyExportDir() throws Exception {
        Path src = TinyModels.writeTinyModel(dir);
        Path out = dir.resolve("out");
        Files.createDirectories(out);
        Files.writeString(out.resolve("keep.txt"), "precious");
        ModelException e = assertThrows(ModelException.class, () -> CheckpointQuantizer.builder(BaseFormats.QLORA).build().quantize(src, out));
        assertEquals(out + ": exists and is not empty; choose another export_dir or remove it", e.getMessage());
        assertEquals("precious", Files.readString(out.resolve("keep.txt")));
    }
}
