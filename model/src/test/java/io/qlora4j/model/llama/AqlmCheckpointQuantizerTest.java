package io.qlora4j.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.checkpoint.TinyModels;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.quant.aqlm.AqlmBlockTuner;
import io.qlora4j.quant.aqlm.AqlmQuantizer;
import io.qlora4j.quant.aqlm.AqlmScheme;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.calibration.AqlmCheckpointQuantizer;

class AqlmCheckpointQuantizerTest {
    @TempDir
    Path dir;

    private static List<int[]> sequences() {
        Random rnd = new Random(4);
        List<int[]> s = new ArrayList<>();
        for (int i = 0; i < 6; i++) {
            int[] ids = new int[12];
            for (int j = 0; j < ids.length; j++) {
                ids[j] = 3 + rnd.nextInt(TinyModels.VOCAB - 3);
            }
            s.add(ids);
        }
        return s;
    }

    private static AqlmCheckpointQuantizer quantizer(AqlmScheme scheme, int finetuneEpochs) {
        return AqlmCheckpointQuantizer.builder(AqlmQuantizer.builder(scheme).optStepsPerEpoch(5).optMaxEpochs(2)
                .optInitMaxIter(5).optLr(1e-3).build())
                .optTuner(AqlmBlockTuner.builder().optEpochs(finetuneEpochs).optLr(1e-4).optBatchSize(3).build())
                .optSeed(1).build();
    }

    @Test
    void writesTheHuggingFaceLayoutWhoseCodesCodebooksAndScalesAreWhatTheModelComputesWith() throws Exception {
        Path source = TinyModels.writeTinyModel(dir);
        Path target = dir.resolve("aqlm");
        List<Double> errors = new ArrayList<>();
        List<Double> tuneLosses = new ArrayList<>();
        AqlmCheckpointQuantizer.Report r = quantizer(new AqlmScheme(2, 6, 8, 1), 2).quantize(source, target,
                sequences(), new AqlmCheckpointQuantizer.Listener() {
                    @Override
                    public void step(String module, int done, int total, double relativeError) {
                        errors.add(relativeError);
                    }

                    @Override
                    public void tuned(int layer, int epoch, double loss) {
                        tuneLosses.add(loss);
                    }
                });
        assertEquals(7, r.linears());
        assertTrue(r.meanRelativeError() > 0 && r.meanRelativeError() < 1, "error " + r.meanRelativeError());
        assertEquals(2, tuneLosses.size());
        assertFalse(errors.isEmpty());
        JsonNode q = new ObjectMapper().readTree(target.resolve("config.json").toFile()).path("quantization_config");
        assertEquals("aqlm", q.path("quant_method").asText());
        assertEquals(6, q.path("nbits_per_codebook").asInt());
        assertEquals(2, q.path("num_codebooks").asInt());
        assertEquals("[\"model.layers.0.input_layernorm.weight\",\"model.layers.0.post_attention_layernorm.weight\","
                + "\"model.embed_tokens.weight\",\"model.norm.weight\",\"lm_head.weight\"]",
                q.path("linear_weights_not_to_quantize").toString());
        DecoderConfig config = ModelFamilies.read(target.resolve("config.json"));
        try (SafetensorsReader reader = SafetensorsReader.open(target); NDManager m = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().build().load(target, m)) {
            for (String name : config.linearNames()) {
                String p = "model.layers.0." + name;
                assertFalse(reader.contains(p + ".weight"), p);
                assertEquals(DType.I8, reader.info(p + ".codes").dtype());
                assertEquals(DType.F16, reader.info(p + ".codebooks").dtype());
                assertEquals(DType.F16, reader.info(p + ".scales").dtype());
                long[] inOut = config.inOut(name);
                float[] expected = decodeIndependently(reader, p, (int) inOut[1], (int) inOut[0]);
                float[] lent = ((BaseLinear) model.block(0).linear(name)).withWeight(DataType.FLOAT32,
                        NDArray::toFloatArray);
                for (int i = 0; i < expected.length; i++) {
                    assertEquals(expected[i], lent[i], 1e-6 * Math.max(1, Math.abs(expected[i])), p + " at " + i);
                }
            }
        }
    }

    /** {@code W[o, g*8 + b] = s[o] * (cb[0, c0, 0, b] + cb[1, c1, 0, b])} from the file's bytes, in float64. */
    private static float[] decodeIndependently(SafetensorsReader reader, String p, int out, int in) throws Exception {
        ByteBuffer codes = reader.bytes(p + ".codes").order(ByteOrder.LITTLE_ENDIAN);
        float[] cb = reader.floats(p + ".codebooks");
        float[] s = reader.floats(p + ".scales");
        float[] w = new float[out * in];
        for (int o = 0; o < out; o++) {
            for (int g = 0; g < in / 8; g++) {
                int c0 = codes.get(((o * (in / 8)) + g) * 2) & 0x3F;
                int c1 = codes.get(((o * (in / 8)) + g) * 2 + 1) & 0x3F;
                for (int b = 0; b < 8; b++) {
                    w[o * in + g * 8 + b] = (float) (s[o] * ((double) cb[c0 * 8 + b] + cb[(64 + c1) * 8 + b]));
                }
            }
        }
        return w;
    }

    @Test
    void aSchemeTheShapesCannotTakeIsRefusedAndNothingIsWritten() throws Exception {
        Path source = TinyModels.writeTinyModel(dir);
        Path target = dir.resolve("aqlm");
        ModelException e = assertThrows(ModelException.class,
                () -> quantizer(new AqlmScheme(1, 4, 7, 1), 0).quantize(source, target, sequences(), (m, d, t, r) -> { }));
        assertEquals(source.resolve("config.json") + ": self_attn.q_proj cannot take AQLM 1x4 g7: in_features 64 is not "
                + "a multiple of in_group_size 7", e.getMessage());
        assertFalse(Files.exists(target));
    }
}
