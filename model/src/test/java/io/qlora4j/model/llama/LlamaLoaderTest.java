package io.qlora4j.model.llama;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.DenseEmbedding;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.model.Float16Weight;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.LogitAsserts;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.format.Bnb4bitFormat;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.QuantType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LlamaLoaderTest {
    private static final DecoderConfig CONFIG = LlamaFamily.builder(32, 56, 2, 4, 37).optNumKeyValueHeads(2)
            .optBiases(LlamaFamily.biases(true, false)).optRmsNormEps(1e-5).build();

    @TempDir
    Path dir;

    private float[] logits(CausalLM model, NDManager m, int[] tokens) {
        return model.forward(LlamaModelTest.idsArray(m, tokens), null).toFloatArray();
    }

    private static double[][] reference(DecoderConfig config, Map<String, float[]> weights, int[] tokens) {
        int[] positions = new int[tokens.length];
        boolean[] real = new boolean[tokens.length];
        for (int i = 0; i < tokens.length; i++) {
            positions[i] = i;
            real[i] = true;
        }
        return new ReferenceLlama(config, weights).forward(tokens, positions, real);
    }

    @Test
    void shardedFloat32CheckpointLoadsDenseAndMatchesReference() throws Exception {
        TinyLlama tiny = new TinyLlama(CONFIG, 31);
        tiny.write(dir, DType.F32, 20_000);
        assertTrue(Files.exists(dir.resolve("model.safetensors.index.json")));
        int[] tokens = LlamaModelTest.ids(7, 1);
        try (NDManager m = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().build().load(dir, m)) {
            assertInstanceOf(DenseLinear.class, model.block(1).linear("mlp.down_proj"));
            LogitAsserts.assertClose(reference(CONFIG, tiny.weights, tokens), logits(model, m, tokens), 0, 7);
        }
    }

    @Test
    void bfloat16CheckpointIsWidenedExactly() throws Exception {
        TinyLlama tiny = new TinyLlama(CONFIG, 32);
        tiny.write(dir, DType.BF16, Long.MAX_VALUE);
        Map<String, float[]> rounded = new LinkedHashMap<>();
        tiny.weights.forEach((name, values) -> {
            float[] r = new float[values.length];
            for (int i = 0; i < r.length; i++) {
                int bits = Float.floatToRawIntBits(values[i]); // round to nearest even on the upper 16 bits
                r[i] = Float.intBitsToFloat((bits + 0x7FFF + ((bits >>> 16) & 1)) & 0xFFFF0000);
            }
            rounded.put(name, r);
        });
        int[] tokens = LlamaModelTest.ids(6, 2);
        try (NDManager m = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().build().load(dir, m)) {
            assertArrayEquals(rounded.get("model.norm.weight"), model.norm().toFloatArray());
            // embed_tokens and lm_head stay in 16 bits, and every row comes back exactly
            assertInstanceOf(Float16Weight.class, model.embedTokens());
            assertInstanceOf(Float16Weight.class, model.lmHead());
            NDArray all = m.arange(0, CONFIG.vocabSize(), 1, DataType.INT64);
            assertArrayEquals(rounded.get("model.embed_tokens.weight"), model.embed(all).toFloatArray());
            long codesAndScales = CONFIG.vocabSize() * (2L * CONFIG.hiddenSize() + 4);
            assertEquals(2 * codesAndScales, model.embedTokens().bytes() + model.lmHead().bytes());
            LogitAsserts.assertClose(reference(CONFIG, rounded, tokens), logits(model, m, tokens), 0, 6);
        }
        try (NDManager m = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().optFloat32Embeddings(true).build().load(dir, m)) {
            assertInstanceOf(DenseEmbedding.class, model.embedTokens());
            assertInstanceOf(DenseLinear.class, model.lmHead());
            LogitAsserts.assertClose(reference(CONFIG, rounded, tokens), logits(model, m, tokens), 0, 6);
        }
    }

    @Test
    void float16ProjectionsHoldABfloat16CheckpointExactlyInSixteenBitsAndFloat32OnesDense() throws Exception {
        TinyLlama tiny = new TinyLlama(CONFIG, 33);
        Path f32 = Files.createDirectories(dir.resolve("f32"));
        tiny.write(f32, DType.F32, Long.MAX_VALUE);
        try (NDManager m = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().optFloat16Projections(true).build().load(f32, m)) {
            assertInstanceOf(DenseLinear.class, model.block(0).linear("mlp.up_proj")); // not exact in 16 bits
        }
        tiny.write(dir, DType.BF16, Long.MAX_VALUE);
        Map<String, float[]> stored = storedWeights(tiny);
        try (NDManager m = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().optFloat16Projections(true).build().load(dir, m)) {
            for (String name : CONFIG.linearNames()) {
                BaseLinear q = (BaseLinear) model.block(1).linear(name);
                assertInstanceOf(Float16Weight.class, q);
                assertArrayEquals(stored.get("model.layers.1." + name + ".weight"),
                        q.withWeight(DataType.FLOAT32, NDArray::toFloatArray));
                long out = q.outFeatures();
                long biasBytes = q.bias() == null ? 0 : 4 * out;
                assertEquals(out * (2 * q.inFeatures() + 4) + biasBytes, q.bytes()); // codes, row scales, bias
            }
            assertTrue(((BaseLinear) model.block(0).linear("self_attn.q_proj")).bias() != null);
            int[] tokens = LlamaModelTest.ids(5, 3);
            LogitAsserts.assertClose(reference(CONFIG, stored, tokens), logits(model, m, tokens), 0, 5);
        }
    }

    /** The weights of {@code tiny} as written to {@code dir} (rounded to its dtype), read back in float32. */
    private Map<String, float[]> storedWeights(TinyLlama tiny) throws ModelException {
        Map<String, float[]> stored = new LinkedHashMap<>();
        try (SafetensorsReader reader = SafetensorsReader.open(dir)) {
            for (String name : tiny.weights.keySet()) {
                stored.put(name, reader.floats(name));
            }
        }
        return stored;
    }

    @Test
    void float16ComputeFollowsTheFloat64ReferenceWithinHalfPrecision() throws Exception {
        TinyLlama tiny = new TinyLlama(CONFIG, 36);
        tiny.write(dir, DType.BF16, Long.MAX_VALUE);
        Map<String, float[]> rounded = storedWeights(tiny);
        int[] tokens = LlamaModelTest.ids(6, 5);
        double[][] expected = reference(CONFIG, rounded, tokens);
        try (NDManager m = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().optComputeType(DataType.FLOAT16).build()
                        .load(dir, m)) {
            NDArray ids = LlamaModelTest.idsArray(m, tokens);
            NDArray hidden = model.hiddenStates(ids, model.context(m, tokens.length, 0, null), null);
            assertEquals(DataType.FLOAT16, hidden.getDataType(), "the blocks compute in float16");
            NDArray out = model.forward(ids, null);
            assertEquals(DataType.FLOAT32, out.getDataType(), "logits come out in float32");
            float[] half = out.toFloatArray();
            int vocab = CONFIG.vocabSize();
            double scale = 0;
            double diff = 0;
            for (int i = 0; i < tokens.length; i++) {
                for (int v = 0; v < vocab; v++) {
                    scale = Math.max(scale, Math.abs(expected[i][v]));
                    diff = Math.max(diff, Math.abs(expected[i][v] - half[i * vocab + v]));
                }
            }
            // float16 keeps 11 significant bits: a few ulps of the largest logit after two blocks
            assertTrue(scale > 0.5 && diff <= 1e-2 * scale, "max |fp16 - ref| " + diff + " against " + scale);
        }
    }

    @Test
    void tiedBfloat16EmbeddingServesAsLmHeadInSixteenBits() throws Exception {
        DecoderConfig tied = LlamaFamily.builder(16, 24, 1, 2, 37).optTieWordEmbeddings(true).build();
        TinyLlama tiny = new TinyLlama(tied, 35);
        tiny.write(dir, DType.BF16, Long.MAX_VALUE);
        Map<String, float[]> rounded = storedWeights(tiny);
        int[] tokens = LlamaModelTest.ids(5, 4);
        try (NDManager m = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().build().load(dir, m)) {
            assertSame(model.embedTokens(), model.lmHead());
            LogitAsserts.assertClose(reference(tied, rounded, tokens), logits(model, m, tokens), 0, 5);
        }
    }

    private void assertQuantizedModelMatchesReferenceOnDequantizedWeights(Bnb4bitFormat format)
            throws Exception {
        BlockwiseQuantizer quantizer = BlockwiseQuantizer.builder().optType(format.type())
                .optDoubleQuant(format.doubleQuant()).build();
        TinyLlama tiny = new TinyLlama(CONFIG, 33);
        tiny.write(dir, DType.F32, Long.MAX_VALUE);
        Map<String, float[]> dequantized = new LinkedHashMap<>(tiny.weights);
        for (int l = 0; l < CONFIG.numHiddenLayers(); l++) {
            for (String name : CONFIG.linearNames()) {
                String key = "model.layers." + l + "." + name + ".weight";
                dequantized.put(key, quantizer.dequantize(quantizer.quantize(tiny.weights.get(key), tiny.shapes.get(key))));
            }
        }
        int[] tokens = LlamaModelTest.ids(8, 3);
        try (NDManager m = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().optFormat(format).build().load(dir, m)) {
            for (String name : CONFIG.linearNames()) {
                assertInstanceOf(QuantizedLinear.class, model.block(0).linear(name));
            }
            assertInstanceOf(DenseLinear.class, model.lmHead());
            LogitAsserts.assertClose(reference(CONFIG, dequantized, tokens), logits(model, m, tokens), 0, 8);
        }
    }

    @Test
    void nf4DoubleQuantizedModelMatchesReferenceOnDequantizedWeights() throws Exception {
        assertQuantizedModelMatchesReferenceOnDequantizedWeights(Bnb4bitFormat.QLORA);
    }

    @Test
    void fp4ModelMatchesReferenceOnDequantizedWeights() throws Exception {
        assertQuantizedModelMatchesReferenceOnDequantizedWeights(
                new Bnb4bitFormat(QuantType.FP4, 64, false));
    }

    @Test
    void tiedCheckpointWithoutLmHeadSharesTheEmbedding() throws Exception {
        DecoderConfig tied = LlamaFamily.builder(16, 24, 1, 2, 37).optTieWordEmbeddings(true).build();
        TinyLlama tiny = new TinyLlama(tied, 34);
        tiny.write(dir, DType.F32, Long.MAX_VALUE);
        int[] tokens = LlamaModelTest.ids(5, 4);
        try (NDManager m = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().build().load(dir, m)) {
            assertSame(((DenseEmbedding) model.embedTokens()).weight(), ((DenseLinear) model.lmHead()).weight());
            LogitAsserts.assertClose(reference(tied, tiny.weights, tokens), logits(model, m, tokens), 0, 5);
        }
    }

    @Test
    void tensorWithTheWrongShapeIsNamedWithBothShapes() throws Exception {
        TinyLlama tiny = new TinyLlama(CONFIG, 35);
        tiny.shapes.put("model.layers.1.self_attn.k_proj.weight", new long[] {32, 16});
        tiny.write(dir, DType.F32, Long.MAX_VALUE);
        ModelException e = assertThrows(ModelException.class, () -> load(dir));
        assertEquals(dir.resolve("model.safetensors") + ": tensor model.layers.1.self_attn.k_proj.weight has shape"
                + " [32, 16], expected [16, 32] for this config", e.getMessage());
    }

    @Test
    void missingTensorAndMissingConfigAreNamed() throws Exception {
        TinyLlama tiny = new TinyLlama(CONFIG, 36);
        tiny.weights.remove("model.layers.0.self_attn.q_proj.bias");
        tiny.write(dir, DType.F32, Long.MAX_VALUE);
        assertEquals("missing tensor model.layers.0.self_attn.q_proj.bias (the config calls for shape [32])",
                assertThrows(ModelException.class, () -> load(dir)).getMessage());
        Path empty = Files.createDirectory(dir.resolve("empty"));
        assertEquals(empty.resolve("config.json") + ": file not found",
                assertThrows(ModelException.class, () -> load(empty)).getMessage());
    }

    @Test
    void biasTensorTheConfigDoesNotCallForIsRefusedNotUsed() throws Exception {
        // CONFIG has attention biases but no MLP biases: a down_proj bias in the file would be added by a loader that
        // looked at the file rather than the config, and transformers (which follows the config) would not add it
        TinyLlama tiny = new TinyLlama(CONFIG, 37);
        tiny.weights.put("model.layers.1.mlp.down_proj.bias", new float[32]);
        tiny.shapes.put("model.layers.1.mlp.down_proj.bias", new long[] {32});
        tiny.write(dir, DType.F32, Long.MAX_VALUE);
        assertEquals(dir.resolve("model.safetensors") + ": tensor model.layers.1.mlp.down_proj.bias is a bias, but the"
                + " config says mlp_bias is false; set it to true in config.json or remove the tensor",
                assertThrows(ModelException.class, () -> load(dir)).getMessage());
    }

    @Test
    void tensorsOfLayersPastTheConfigAreLeftUnreadAndNamedInOneWarning() throws Exception {
        // a two-layer checkpoint under a one-layer config.json: transformers loads layer 0 and warns about layer 1
        TinyLlama tiny = new TinyLlama(CONFIG, 38);
        tiny.weights.put("model.layers.0.self_attn.rotary_emb.inv_freq", new float[2]); // older checkpoints' buffer
        tiny.shapes.put("model.layers.0.self_attn.rotary_emb.inv_freq", new long[] {2});
        tiny.write(dir, DType.F32, Long.MAX_VALUE);
        DecoderConfig oneLayer = LlamaFamily.builder(32, 56, 1, 4, 37).optNumKeyValueHeads(2)
                .optBiases(LlamaFamily.biases(true, false)).optRmsNormEps(1e-5).build();
        oneLayer.write(dir.resolve("config.json"));
        long layerOne = tiny.weights.keySet().stream().filter(k -> k.startsWith("model.layers.1.")).count();
        List<String> warnings = new ArrayList<>();
        int[] tokens = LlamaModelTest.ids(6, 5);
        try (NDManager m = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().optWarnings(warnings::add).build().load(dir, m)) {
            LogitAsserts.assertClose(reference(oneLayer, tiny.weights, tokens), logits(model, m, tokens), 0, 6);
        }
        assertEquals(List.of(dir.resolve("model.safetensors") + ": " + layerOne + " tensors that "
                + dir.resolve("config.json") + " does not call for, left unread (the first: "
                + "model.layers.1.input_layernorm.weight); does the config describe this checkpoint"
                + " (num_hidden_layers 1, model_type llama)?"), warnings);
        warnings.clear();
        CONFIG.write(dir.resolve("config.json"));
        try (NDManager m = NDManager.newBaseManager()) {
            ModelLoader.builder().optWarnings(warnings::add).build().load(dir, m).close();
        }
        assertEquals(List.of(), warnings, "the inv_freq buffer alone is not named");
    }

    private static void load(Path modelDir) throws ModelException {
        try (NDManager m = NDManager.newBaseManager()) {
            ModelLoader.builder().build().load(modelDir, m).close();
        }
    }
}
