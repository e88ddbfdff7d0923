package io.qlora4j.adapters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.DenseEmbedding;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.decoder.DecoderBlock;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.TransformerBlock;
import io.qlora4j.model.decoder.TransformerLM;
import io.qlora4j.model.llama.LlamaFamily;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Test fixture: a two-layer Llama (GQA 4/2 heads, head_dim 4) with random float32 weights keyed by Hugging Face
 * names, built into a {@link CausalLM} whose block projections come from any frozen-layer factory.
 */
final class TinyModel {
    /** Builds one projection from its weight {@code [out, in]} (row-major). */
    @FunctionalInterface
    interface LinearFactory {
        LinearLayer create(float[] weight, long out, long in);
    }

    final DecoderConfig config = LlamaFamily.builder(16, 24, 2, 4, 11).optNumKeyValueHeads(2).optRmsNormEps(1e-5).build();
    final Map<String, float[]> weights = new HashMap<>();
    private final Random random;

    TinyModel(long seed) {
        random = new Random(seed);
        int hidden = config.hiddenSize();
        weights.put("model.embed_tokens.weight", gaussian(config.vocabSize() * hidden, 1.0));
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            weights.put("model.layers." + l + ".input_layernorm.weight", norm());
            weights.put("model.layers." + l + ".post_attention_layernorm.weight", norm());
            for (String name : config.linearNames()) {
                long[] shape = linearShape(name);
                weights.put(weightName(l, name), gaussian((int) (shape[0] * shape[1]), 1.2 / Math.sqrt(shape[1])));
            }
        }
        weights.put("model.norm.weight", norm());
        weights.put("lm_head.weight", gaussian(config.vocabSize() * hidden, 1.5 / Math.sqrt(hidden)));
    }

    static String weightName(int layer, String linearName) {
        return "model.layers." + layer + "." + linearName + ".weight";
    }

    /** {@code [out, in]} of a block projection. */
    long[] linearShape(String name) {
        int hidden = config.hiddenSize();
        return switch (TargetModules.shortName(name)) {
            case "q_proj" -> new long[] {config.queryDim(), hidden};
            case "k_proj", "v_proj" -> new long[] {config.keyValueDim(), hidden};
            case "o_proj" -> new long[] {hidden, config.queryDim()};
            case "gate_proj", "up_proj" -> new long[] {config.intermediateSize(), hidden};
            default -> new long[] {hidden, config.intermediateSize()};
        };
    }

    /** The model with dense float32 projections. */
    CausalLM build(NDManager m) {
        return build(m, (w, out, in) -> new DenseLinear(m.create(w, new Shape(out, in)), null));
    }

    /** The model with projections made by {@code factory}; embeddings, norms and lm_head dense float32. */
    CausalLM build(NDManager m, LinearFactory factory) {
        List<DecoderBlock> blocks = new ArrayList<>();
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            Map<String, LinearLayer> linears = new LinkedHashMap<>();
            for (String name : config.linearNames()) {
                long[] shape = linearShape(name);
                linears.put(name, factory.create(weights.get(weightName(l, name)), shape[0], shape[1]));
            }
            Map<String, NDArray> norms = new LinkedHashMap<>();
            for (String norm : config.normShapes().keySet()) {
                norms.put(norm, vector(m, "model.layers." + l + "." + norm + ".weight"));
            }
            blocks.add(new TransformerBlock(config, l, norms, linears));
        }
        long vocab = config.vocabSize();
        long hidden = config.hiddenSize();
        return new TransformerLM(config,
                new DenseEmbedding(m.create(weights.get("model.embed_tokens.weight"), new Shape(vocab, hidden))),
                blocks, vector(m, "model.norm.weight"),
                new DenseLinear(m.create(weights.get("lm_head.weight"), new Shape(vocab, hidden)), null));
    }

    /** Token ids {@code [1, n]} as an int array, values spread over the vocabulary. */
    static int[] ids(int n) {
        int[] ids = new int[n];
        for (int i = 0; i < n; i++) {
            ids[i] = (3 + 7 * i) % 11;
        }
        return ids;
    }

    static NDArray idsArray(NDManager m, int[] ids) {
        return m.create(ids, new Shape(1, ids.length));
    }

    private NDArray vector(NDManager m, String name) {
        return m.create(weights.get(name));
    }

    private float[] norm() {
        float[] v = new float[config.hiddenSize()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (1 + 0.2 * random.nextGaussian());
        }
        return v;
    }

    private float[] gaussian(int n, double scale) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) (scale * random.nextGaussian());
        }
        return v;
    }
}
