package io.qlora4j.model.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.DenseEmbedding;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/** Random float32 weights for a tiny config, keyed by Hugging Face tensor names, and the model built from them. */
final class TinyLlama {
    final LlamaConfig config;
    final Map<String, float[]> weights = new LinkedHashMap<>();
    final Map<String, long[]> shapes = new LinkedHashMap<>();
    private final Random random;

    TinyLlama(LlamaConfig config, long seed) {
        this.config = config;
        this.random = new Random(seed);
        int hidden = config.hiddenSize();
        put("model.embed_tokens.weight", 1.0, config.vocabSize(), hidden);
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            norm(p + "input_layernorm.weight");
            linear(p + "self_attn.q_proj", config.queryDim(), hidden, config.attentionBias());
            linear(p + "self_attn.k_proj", config.keyValueDim(), hidden, config.attentionBias());
            linear(p + "self_attn.v_proj", config.keyValueDim(), hidden, config.attentionBias());
            linear(p + "self_attn.o_proj", hidden, config.queryDim(), config.attentionBias());
            norm(p + "post_attention_layernorm.weight");
            linear(p + "mlp.gate_proj", config.intermediateSize(), hidden, config.mlpBias());
            linear(p + "mlp.up_proj", config.intermediateSize(), hidden, config.mlpBias());
            linear(p + "mlp.down_proj", hidden, config.intermediateSize(), config.mlpBias());
        }
        norm("model.norm.weight");
        if (!config.tieWordEmbeddings()) {
            put("lm_head.weight", 2.0 / Math.sqrt(hidden), config.vocabSize(), hidden);
        }
    }

    private void linear(String name, int out, int in, boolean bias) {
        put(name + ".weight", 1.5 / Math.sqrt(in), out, in);
        if (bias) {
            put(name + ".bias", 0.2, out);
        }
    }

    private void norm(String name) {
        float[] v = new float[config.hiddenSize()];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (1 + 0.2 * random.nextGaussian());
        }
        weights.put(name, v);
        shapes.put(name, new long[] {v.length});
    }

    private void put(String name, double scale, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (scale * random.nextGaussian());
        }
        weights.put(name, v);
        shapes.put(name, shape);
    }

    NDArray array(NDManager m, String name) {
        float[] v = weights.get(name);
        return v == null ? null : m.create(v, new Shape(shapes.get(name)));
    }

    /** The DJL model with dense float32 layers in {@code m}. */
    LlamaModel build(NDManager m) {
        return build(m, DataType.FLOAT32);
    }

    /** The model with dense float32 weights, computing in {@code computeType}. */
    LlamaModel build(NDManager m, DataType computeType) {
        List<LlamaBlock> blocks = new ArrayList<>();
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            Map<String, LinearLayer> linears = new LinkedHashMap<>();
            for (String name : LlamaBlock.LINEAR_NAMES) {
                linears.put(name, new DenseLinear(array(m, p + name + ".weight"), array(m, p + name + ".bias")));
            }
            blocks.add(new LlamaBlock(config, l, array(m, p + "input_layernorm.weight"),
                    array(m, p + "post_attention_layernorm.weight"), linears));
        }
        LinearLayer head = config.tieWordEmbeddings() ? null : new DenseLinear(array(m, "lm_head.weight"), null);
        return new LlamaModel(config, new DenseEmbedding(array(m, "model.embed_tokens.weight")), blocks,
                array(m, "model.norm.weight"), head, computeType);
    }

    /** Writes config.json and the weights as {@code dtype} safetensors (sharded past {@code maxShardBytes}). */
    void write(Path dir, DType dtype, long maxShardBytes) throws IOException, ModelException {
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).optMaxShardBytes(maxShardBytes).build()) {
            for (Map.Entry<String, float[]> e : weights.entrySet()) {
                writer.addFloats(e.getKey(), dtype, shapes.get(e.getKey()), e.getValue());
            }
        }
        config.write(dir.resolve("config.json"));
    }

    ReferenceLlama reference() {
        return new ReferenceLlama(config, weights);
    }
}
