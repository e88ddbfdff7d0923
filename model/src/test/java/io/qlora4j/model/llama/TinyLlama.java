package io.qlora4j.model.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.DenseEmbedding;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.DecoderBlock;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.TransformerBlock;
import io.qlora4j.model.decoder.TransformerLM;
import io.qlora4j.model.family.FamilyCheckpoint;
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
    final DecoderConfig config;
    final Map<String, float[]> weights = new LinkedHashMap<>();
    final Map<String, long[]> shapes = new LinkedHashMap<>();
    private final Random random;

    TinyLlama(DecoderConfig config, long seed) {
        this.config = config;
        this.random = new Random(seed);
        int hidden = config.hiddenSize();
        put("model.embed_tokens.weight", 1.0, config.vocabSize(), hidden);
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            norm(p + "input_layernorm.weight");
            linear(p, "self_attn.q_proj", config.queryDim(), hidden);
            linear(p, "self_attn.k_proj", config.keyValueDim(), hidden);
            linear(p, "self_attn.v_proj", config.keyValueDim(), hidden);
            linear(p, "self_attn.o_proj", hidden, config.queryDim());
            norm(p + "post_attention_layernorm.weight");
            linear(p, "mlp.gate_proj", config.intermediateSize(), hidden);
            linear(p, "mlp.up_proj", config.intermediateSize(), hidden);
            linear(p, "mlp.down_proj", hidden, config.intermediateSize());
        }
        norm("model.norm.weight");
        if (!config.tieWordEmbeddings()) {
            put("lm_head.weight", 2.0 / Math.sqrt(hidden), config.vocabSize(), hidden);
        }
    }

    private void linear(String prefix, String name, int out, int in) {
        put(prefix + name + ".weight", 1.5 / Math.sqrt(in), out, in);
        if (config.biases().contains(name)) {
            put(prefix + name + ".bias", 0.2, out);
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
        weights.put(name, FamilyCheckpoint.gaussian(random, scale, shape));
        shapes.put(name, shape);
    }

    NDArray array(NDManager m, String name) {
        float[] v = weights.get(name);
        return v == null ? null : m.create(v, new Shape(shapes.get(name)));
    }

    /** The DJL model with dense float32 layers in {@code m}. */
    CausalLM build(NDManager m) {
        return build(m, DataType.FLOAT32);
    }

    /** The model with dense float32 weights, computing in {@code computeType}. */
    CausalLM build(NDManager m, DataType computeType) {
        List<DecoderBlock> blocks = new ArrayList<>();
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            Map<String, LinearLayer> linears = new LinkedHashMap<>();
            for (String name : config.linearNames()) {
                linears.put(name, new DenseLinear(array(m, p + name + ".weight"), array(m, p + name + ".bias")));
            }
            Map<String, NDArray> norms = new LinkedHashMap<>();
            for (String norm : config.normShapes().keySet()) {
                norms.put(norm, array(m, p + norm + ".weight"));
            }
            blocks.add(new TransformerBlock(config, l, norms, linears));
        }
        LinearLayer head = config.tieWordEmbeddings() ? null : new DenseLinear(array(m, "lm_head.weight"), null);
        return new TransformerLM(config, new DenseEmbedding(array(m, "model.embed_tokens.weight")), blocks,
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
