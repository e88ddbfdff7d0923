package io.qlora4j.model.family;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.checkpoint.CheckpointQuantizer;
import io.qlora4j.model.decoder.AttentionContext;
import io.qlora4j.model.decoder.BlockCalls;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.KvCache;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.family.ReferenceDecoder.Rope;
import io.qlora4j.model.family.ReferenceDecoder.Spec;
import io.qlora4j.model.generation.CachedDecoding;
import io.qlora4j.model.generation.Generator;
import io.qlora4j.model.generation.Perplexity;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.quant.BlockwiseQuantizer;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Every family loaded from a checkpoint written as transformers writes it (config.json in 4.x's and v5's spelling,
 * tied and untied, each family's options) against the float64 {@link ReferenceDecoder} of what that config means:
 * logits within {@code 1e-4 * max |ref|} and the token-weighted NLL that {@code eval} reports within 1e-4 relative,
 * dense and NF4 (the reference then reads the NF4 round trip of each projection); and generation through the KV
 * cache equal to a full forward.
 */
class FamilyForwardTest {
    private static final double TOLERANCE = 1e-4;
    private static final int[] IDS = {5, 17, 3, 30, 8, 22, 11, 2, 36, 14, 27, 9};

    @TempDir
    Path dir;

    /** Qwen2.5-style: q/k/v biases, theta 1e6, tied; a dormant sliding_window with use_sliding_window false. */
    @Test
    void qwen25WithDormantSlidingWindowMatchesReference() throws Exception {
        Spec spec = Spec.of("qwen2", 32, 48, 2, 4, 2, 8, 40).with(b -> b.biased("q_proj", "k_proj", "v_proj")
                .theta(1e6).tied(true));
        assertFamily(spec, false, Map.of("use_sliding_window", false, "sliding_window", 2, "max_window_layers", 0));
        assertFamily(spec.with(b -> b.tied(false)), true, Map.of("use_sliding_window", false, "sliding_window", 2));
    }

    /** Qwen2 with use_sliding_window: the layers from max_window_layers on slide, or those layer_types names. */
    @Test
    void qwen2SlidingWindowAppliesFromMaxWindowLayersOrLayerTypes() throws Exception {
        Spec spec = Spec.of("qwen2", 32, 48, 2, 4, 2, 8, 40).with(b -> b.biased("q_proj", "k_proj", "v_proj")
                .windows(0, 3));
        assertFamily(spec, false, Map.of("use_sliding_window", true, "sliding_window", 3, "max_window_layers", 1));
        Spec first = spec.with(b -> b.windows(3, 0));
        assertFamily(first, true, Map.of("use_sliding_window", true, "sliding_window", 3, "max_window_layers", 1,
                "layer_types", List.of("sliding_attention", "full_attention")));
        assertWindowMatters(spec);
    }

    /** Qwen3: per-head q/k norms before RoPE, an explicit head_dim other than hidden / heads, attention_bias. */
    @Test
    void qwen3QkNormsAndExplicitHeadDimMatchReference() throws Exception {
        Spec spec = Spec.of("qwen3", 32, 48, 2, 4, 2, 16, 40).with(b -> b.qkNorm(true).theta(1e6));
        assertFamily(spec, true, Map.of());
        assertFamily(spec.with(b -> b.tied(true).biased("q_proj", "k_proj", "v_proj", "o_proj")), false,
                Map.of("attention_bias", true));
    }

    /**
     * Gemma: (1 + w) norms in float32, embeddings times sqrt(hidden), multi-query attention with head_dim 16 for
     * hidden 32 and 4 heads; exact GELU from hidden_act "gelu" (hidden_activation ignored, as current transformers
     * does), tanh GELU by default.
     */
    @Test
    void gemmaOffsetNormsScaledEmbeddingAndGeluVariantsMatchReference() throws Exception {
        Spec spec = Spec.of("gemma", 32, 48, 2, 4, 1, 16, 40).with(b -> b.offsetNorm(true).scaledEmbedding(true)
                .activation("gelu").tied(true));
        assertFamily(spec, false, Map.of("hidden_activation", "gelu_pytorch_tanh"));
        Map<String, Object> noAct = new HashMap<>();
        noAct.put("hidden_act", null);
        assertFamily(spec.with(b -> b.activation("gelu_tanh").tied(false)), true, noAct);
    }

    /**
     * Gemma 2: sandwich norms, query_pre_attn_scalar, attention and final soft-caps (small enough to bend the
     * values), sliding window on layers 0 and 2, hidden_activation.
     */
    @Test
    void gemma2SoftCapsSandwichNormsAndAlternatingWindowsMatchReference() throws Exception {
        Spec spec = Spec.of("gemma2", 32, 48, 3, 4, 2, 16, 40).with(b -> b.offsetNorm(true).scaledEmbedding(true)
                .activation("gelu_tanh").sandwich(true).scoreScale(Math.pow(24, -0.5)).attnCap(1.5).finalCap(2.5)
                .windows(3, 0, 3).tied(true));
        Map<String, Object> keys = Map.of("hidden_act", "gelu_pytorch_tanh", "hidden_activation", "gelu_pytorch_tanh",
                "query_pre_attn_scalar", 24, "attn_logit_softcapping", 1.5, "final_logit_softcapping", 2.5,
                "sliding_window", 3);
        assertFamily(spec, false, keys);
        Map<String, Object> v5 = new HashMap<>(keys);
        v5.put("layer_types", List.of("sliding_attention", "full_attention", "sliding_attention"));
        assertFamily(spec.with(b -> b.tied(false)), true, v5);
        assertTrue(maxDiff(spec, spec.with(b -> b.attnCap(null).finalCap(null))) > 1e-2, "the soft-caps must matter");
        Map<String, Object> off = new HashMap<>(keys);
        off.put("attn_logit_softcapping", null);
        off.put("final_logit_softcapping", null);
        assertFamily(spec.with(b -> b.attnCap(null).finalCap(null)), false, off);
    }

    /**
     * A Phi-3 of fused projections with longrope over an original context of 8 and max_position_embeddings 32
     * (attention factor sqrt(1 + ln 4 / ln 8)).
     */
    private static Spec phi3Longrope(List<Double> shortFactor, List<Double> longFactor) {
        Rope longrope = new Rope("longrope", 4, 0, 0, 8, shortFactor, longFactor, Math.sqrt(1 + Math.log(4) / Math.log(8)));
        return Spec.of("phi3", 32, 48, 2, 4, 4, 8, 40).with(b -> b.fused(true).eps(1e-5).rope(longrope));
    }

    /** Phi-3: fused qkv and gate_up projections, longrope (legacy "su" spelling) beyond the original context. */
    @Test
    void phi3FusedProjectionsAndLongropeMatchReference() throws Exception {
        List<Double> shortFactor = List.of(1.0, 1.3, 1.9, 2.6);
        List<Double> longFactor = List.of(1.1, 2.0, 4.5, 9.0);
        Spec spec = phi3Longrope(shortFactor, longFactor);
        Map<String, Object> legacy = Map.of("max_position_embeddings", 32, "original_max_position_embeddings", 8,
                "rope_scaling", Map.of("type", "su", "short_factor", shortFactor, "long_factor", longFactor));
        assertFamily(spec, false, legacy); // 12 tokens > 8: the long factors
        // as transformers 5 writes it: Phi3Config's own original_max_position_embeddings beside the rope object's
        Map<String, Object> v5 = Map.of("max_position_embeddings", 32, "original_max_position_embeddings", 8,
                "rope_parameters", Map.of("rope_type", "longrope", "rope_theta", 10000.0,
                        "original_max_position_embeddings", 8, "short_factor", shortFactor, "long_factor", longFactor,
                        "partial_rotary_factor", 1.0));
        assertFamily(spec.with(b -> b.tied(true)), true, v5, Arrays.copyOf(IDS, 8)); // within 8: the short factors
    }

    /**
     * Phi-3 generating past its original context: the keys cached within it were rotated with the short factors, so
     * the step that first reaches beyond it runs the whole sequence again, as transformers' {@code generate} drops
     * such a cache; every greedy token is then the argmax of the float64 reference's forward of the whole sequence,
     * which rotates every position with the long factors (the top logit leads the second by 0.5% of it or more at
     * every step). The stale cache kept before chose another token at step 4, the first beyond the original context.
     * Held-out generation feeds rows side by side through the same {@link CachedDecoding}, which refills them all.
     */
    @Test
    void phi3LongropeGenerationPastTheOriginalContextMatchesWholeSequenceForwards() throws Exception {
        List<Double> shortFactor = List.of(1.0, 1.3, 1.9, 2.6);
        List<Double> longFactor = List.of(1.5, 3.0, 6.0, 11.0);
        Spec spec = phi3Longrope(shortFactor, longFactor);
        FamilyCheckpoint checkpoint = new FamilyCheckpoint(spec, 9);
        Path model = checkpoint.write(dir.resolve("phi3-generate"), DType.F32, checkpoint.config(true,
                Map.of("max_position_embeddings", 32, "original_max_position_embeddings", 8, "rope_parameters",
                        Map.of("rope_type", "longrope", "rope_theta", 10000.0, "original_max_position_embeddings", 8,
                                "short_factor", shortFactor, "long_factor", longFactor))));
        int prompt = 5;
        int[] first = referenceGreedy(checkpoint, Arrays.copyOf(IDS, prompt), 13);
        int[] second = referenceGreedy(checkpoint, Arrays.copyOfRange(IDS, 6, 6 + prompt), 13);
        try (NDManager m = NDManager.newBaseManager(); CausalLM lm = load(model, m, null)) {
            int[] generated = Generator.builder().optMaxNewTokens(first.length - prompt).optStopTokenIds(List.of())
                    .build().generate(lm, toLong(Arrays.copyOf(first, prompt)), null);
            assertArrayEquals(Arrays.copyOfRange(first, prompt, first.length), generated);
            try (CachedDecoding rows = new CachedDecoding(lm, 2)) {
                long[] input = LongStream.concat(Arrays.stream(toLong(first), 0, prompt),
                        Arrays.stream(toLong(second), 0, prompt)).toArray();
                for (int length = prompt; length < first.length; length++) {
                    float[] logits = rows.next(input);
                    int vocab = spec.vocab();
                    assertEquals(first[length], argmax(Arrays.copyOf(logits, vocab)), "row 0 at " + length);
                    assertEquals(second[length], argmax(Arrays.copyOfRange(logits, vocab, 2 * vocab)), "row 1 at " + length);
                    input = new long[] {first[length], second[length]};
                }
            }
        }
    }

    /** {@code prompt} continued to {@code length} tokens by the argmax of the reference's whole-sequence forwards. */
    private static int[] referenceGreedy(FamilyCheckpoint checkpoint, int[] prompt, int length) {
        int[] sequence = Arrays.copyOf(prompt, length);
        for (int n = prompt.length; n < length; n++) {
            double[][] logits = checkpoint.reference().forward(Arrays.copyOf(sequence, n), range(n), allReal(n));
            int best = 0;
            for (int v = 1; v < logits[n - 1].length; v++) {
                best = logits[n - 1][v] > logits[n - 1][best] ? v : best;
            }
            sequence[n] = best;
        }
        return sequence;
    }

    private static int argmax(float[] row) {
        int best = 0;
        for (int i = 1; i < row.length; i++) {
            best = row[i] > row[best] ? i : best;
        }
        return best;
    }

    /** Phi-4-mini: 3/4 of each head rotates (top-level partial_rotary_factor), GQA, tied, a sliding window. */
    @Test
    void phi4MiniPartialRotaryAndWindowMatchReference() throws Exception {
        Spec spec = Spec.of("phi3", 32, 48, 2, 4, 2, 16, 40).with(b -> b.fused(true).eps(1e-5).rotaryDim(12)
                .tied(true).windows(4, 4));
        assertFamily(spec, false, Map.of("partial_rotary_factor", 0.75, "sliding_window", 4));
        Map<String, Object> v5 = Map.of("rope_parameters", Map.of("rope_type", "default", "rope_theta", 10000.0,
                "partial_rotary_factor", 0.75), "sliding_window", 4);
        assertFamily(spec.with(b -> b.tied(false)), true, v5);
    }

    /** Llama and Mistral read from v5's spelling too (rope_parameters with llama3 scaling, dtype). */
    @Test
    void llamaAndMistralInV5SpellingMatchReference() throws Exception {
        Rope llama3 = new Rope("llama3", 8, 1, 4, 16, List.of(), List.of(), 1);
        Spec spec = Spec.of("llama", 32, 48, 2, 4, 2, 8, 40).with(b -> b.theta(500000).rope(llama3));
        assertFamily(spec, true, Map.of("rope_parameters", Map.of("rope_type", "llama3", "rope_theta", 500000.0,
                "factor", 8.0, "low_freq_factor", 1.0, "high_freq_factor", 4.0, "original_max_position_embeddings", 16)));
        Spec mistral = Spec.of("mistral", 32, 48, 2, 4, 2, 8, 40).with(b -> b.windows(4, 4));
        assertFamily(mistral, true, Map.of("sliding_window", 4));
    }

    /** transformers + bitsandbytes' saved 4-bit checkpoint of each family loads to the model quantized on the fly. */
    @Test
    void prequantizedCheckpointOfEveryFamilyLoadsAsQuantizingOnTheFly() throws Exception {
        for (Spec spec : FamilyCheckpoint.oneOfEachFamily(1, 40)) {
            FamilyCheckpoint checkpoint = new FamilyCheckpoint(spec, 5);
            Path source = checkpoint.write(dir.resolve(spec.modelType()), DType.BF16,
                    checkpoint.config(false, FamilyCheckpoint.familyKeys(spec)));
            Path nf4 = dir.resolve(spec.modelType() + "-nf4");
            CheckpointQuantizer.builder(BaseFormats.QLORA).build().quantize(source, nf4);
            try (NDManager m = NDManager.newBaseManager(); CausalLM stored = load(nf4, m, null);
                    CausalLM onTheFly = load(source, m, BaseFormats.QLORA)) {
                long[] ids = toLong(IDS);
                for (String name : stored.block(0).linearNames()) {
                    assertInstanceOf(QuantizedLinear.class, stored.block(0).linear(name), spec.modelType() + " " + name);
                }
                assertArrayEquals(onTheFly.forward(m.create(ids, new Shape(1, ids.length)), null).toFloatArray(),
                        stored.forward(m.create(ids, new Shape(1, ids.length)), null).toFloatArray(), spec.modelType());
            }
        }
    }

    /** Every family over every on-the-fly base format equals the float64 reference over that format's round trip. */
    @Test
    void everyFamilyOverEveryBaseFormatMatchesReference() throws Exception {
        for (Spec spec : FamilyCheckpoint.oneOfEachFamily(2, 40)) {
            FamilyCheckpoint checkpoint = new FamilyCheckpoint(spec, 13);
            Path model = checkpoint.write(dir.resolve(spec.modelType() + "-formats"), DType.F32,
                    checkpoint.config(true, FamilyCheckpoint.familyKeys(spec)));
            for (BaseFormat format : BaseFormats.menu()) {
                assertMatches(model, format, checkpoint.formatReference(format), IDS, false);
            }
        }
    }

    /**
     * A block's forward pass without a graph (a recomputing step's first pass) writes into its own temporaries:
     * every family's blocks (SiLU and both GELUs, sandwich norms, fused gate/up) give the bits of the plain pass, and
     * the block's input stays as it was.
     */
    @Test
    void everyFamilysBlocksGiveThePlainBitsWithoutAGraph() throws Exception {
        for (Spec spec : FamilyCheckpoint.oneOfEachFamily(2, 40)) {
            FamilyCheckpoint checkpoint = new FamilyCheckpoint(spec, 13);
            Path dir = checkpoint.write(this.dir.resolve(spec.modelType() + "-graph-free"), DType.F32,
                    checkpoint.config(true, FamilyCheckpoint.familyKeys(spec)));
            try (NDManager m = NDManager.newBaseManager(); CausalLM model = load(dir, m, null)) {
                NDArray hidden = model.embed(m.create(toLong(IDS), new Shape(1, IDS.length)));
                AttentionContext context = model.context(m, IDS.length, 0, null);
                for (int l = 0; l < model.numLayers(); l++) {
                    float[] input = hidden.toFloatArray();
                    NDArray plain = model.block(l).forward(hidden, context, null, BlockCalls.PLAIN);
                    NDArray free = model.block(l).forward(hidden, context, null, BlockCalls.GRAPH_FREE);
                    assertArrayEquals(plain.toFloatArray(), free.toFloatArray(), spec.modelType() + " layer " + l);
                    assertArrayEquals(input, hidden.toFloatArray(), spec.modelType() + " layer " + l + " input");
                    hidden = plain;
                }
            }
        }
    }

    @Test
    void unsupportedModelTypeIsRefusedWithTheSupportedList() {
        ModelException e = assertThrows(ModelException.class,
                () -> ModelFamilies.parse("{\"model_type\": \"gpt_neox\"}", "config.json"));
        assertEquals("config.json: model_type 'gpt_neox' is not supported (supported: llama, mistral, qwen2, qwen3,"
                + " gemma, gemma2, phi3)", e.getMessage());
    }

    @Test
    void headDimContradictingTheCheckpointNamesTheTensor() throws Exception {
        FamilyCheckpoint checkpoint = new FamilyCheckpoint(Spec.of("qwen3", 32, 48, 1, 4, 2, 8, 40)
                .with(b -> b.qkNorm(true)), 3);
        ObjectNode config = checkpoint.config(true, Map.of("head_dim", 16));
        Path model = checkpoint.write(dir.resolve("contradiction"), DType.F32, config);
        ModelException e;
        try (NDManager m = NDManager.newBaseManager()) {
            e = assertThrows(ModelException.class, () -> load(model, m, null));
        }
        assertEquals(model.resolve("model.safetensors") + ": tensor model.layers.0.self_attn.q_proj.weight has shape"
                + " [32, 32], expected [64, 32] for this config",
                e.getMessage());
    }

    private void assertFamily(Spec spec, boolean v5, Map<String, Object> keys) throws Exception {
        assertFamily(spec, v5, keys, IDS);
    }

    /** Loads the checkpoint of {@code spec} dense and NF4 and compares logits, NLL and cached generation. */
    private void assertFamily(Spec spec, boolean v5, Map<String, Object> keys, int[] ids) throws Exception {
        FamilyCheckpoint checkpoint = new FamilyCheckpoint(spec, 11);
        Path model = checkpoint.write(dir.resolve(spec.modelType() + (v5 ? "-v5-" : "-4x-") + System.nanoTime()),
                DType.F32, checkpoint.config(v5, keys));
        // longrope switches to its long factors once a call reaches beyond the original context, so a cache filled
        // before that holds keys rotated with the short ones: no cache check then (generation runs the whole sequence
        // again there, phi3LongropeGenerationPastTheOriginalContextMatchesWholeSequenceForwards)
        boolean cacheable = !spec.rope().type().equals("longrope") || ids.length <= spec.rope().original();
        assertMatches(model, null, checkpoint.reference(), ids, cacheable);
        // QLoRA's format: NF4, blocksize 64, double quantization, which BlockwiseQuantizer's defaults round-trip
        assertMatches(model, BaseFormats.QLORA, checkpoint.quantizedReference(BlockwiseQuantizer.builder().build()), ids,
                cacheable);
    }

    private static void assertMatches(Path dir, BaseFormat format, ReferenceDecoder reference, int[] ids,
            boolean cacheable) throws Exception {
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = load(dir, m, format)) {
            if (format != null) {
                assertInstanceOf(QuantizedLinear.class, model.block(0).linear(model.block(0).linearNames().get(0)));
            }
            double[][] expected = reference.forward(ids, range(ids.length), allReal(ids.length));
            float[] logits = model.forward(m.create(toLong(ids), new Shape(1, ids.length)), null).toFloatArray();
            LogitAsserts.assertClose(expected, logits, 0, expected.length);
            double nll = reference.nll(ids);
            double got = Perplexity.of(model, toLong(ids)).nll();
            assertTrue(Math.abs(got - nll) <= TOLERANCE * Math.abs(nll), "NLL " + got + " vs reference " + nll);
            if (cacheable) {
                assertCachedStepsMatchTheFullForward(model, m, ids, logits);
            }
        }
    }

    /** Feeding the first half at once and then one token at a time through the cache gives the full forward's logits. */
    private static void assertCachedStepsMatchTheFullForward(CausalLM model, NDManager m, int[] ids, float[] full) {
        int vocab = model.config().vocabSize();
        int prefix = ids.length / 2;
        try (KvCache cache = model.newCache(m)) {
            float[] first = model.forward(m.create(toLong(Arrays.copyOf(ids, prefix)), new Shape(1, prefix)), null, cache)
                    .toFloatArray();
            LogitAsserts.assertArrayClose(Arrays.copyOf(full, prefix * vocab), first);
            for (int i = prefix; i < ids.length; i++) {
                float[] step = model.forward(m.create(new long[] {ids[i]}, new Shape(1, 1)), null, cache).toFloatArray();
                LogitAsserts.assertArrayClose(Arrays.copyOfRange(full, i * vocab, (i + 1) * vocab), step);
            }
        }
    }

    private static CausalLM load(Path dir, NDManager m, BaseFormat format) throws ModelException {
        return ModelLoader.builder().optFormat(format).build().load(dir, m);
    }

    /** The sliding window changes the reference's logits of late tokens (so the window test can fail). */
    private static void assertWindowMatters(Spec spec) {
        assertTrue(maxDiff(spec.with(b -> b.windows(0, 0)), spec) > 1e-2, "the window must change late tokens");
    }

    /** The largest logit difference between the references of two specs on the same weights. */
    private static double maxDiff(Spec a, Spec b) {
        FamilyCheckpoint checkpoint = new FamilyCheckpoint(a, 11);
        double[][] x = checkpoint.reference().forward(IDS, range(IDS.length), allReal(IDS.length));
        double[][] y = new ReferenceDecoder(b, checkpoint.weights).forward(IDS, range(IDS.length), allReal(IDS.length));
        double diff = 0;
        for (int i = 0; i < x.length; i++) {
            for (int v = 0; v < x[i].length; v++) {
                diff = Math.max(diff, Math.abs(x[i][v] - y[i][v]));
            }
        }
        return diff;
    }



    static long[] toLong(int[] ids) {
        return Arrays.stream(ids).asLongStream().toArray();
    }

    static int[] range(int n) {
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = i;
        }
        return out;
    }

    static boolean[] allReal(int n) {
        boolean[] out = new boolean[n];
        Arrays.fill(out, true);
        return out;
    }
}
