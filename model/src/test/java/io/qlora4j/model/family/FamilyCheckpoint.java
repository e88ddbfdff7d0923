package io.qlora4j.model.family;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.FloatSource;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;

/**
 * Test fixture (shared through the test jar): a tiny checkpoint of any family as transformers writes it, from a
 * {@link ReferenceDecoder.Spec}: random float32 weights under the family's Hugging Face names (listed here from
 * transformers' modules, not from qlora4j's layout) and a config.json in transformers 4.x's spelling
 * ({@code rope_theta}, {@code rope_scaling}, {@code torch_dtype}) or v5's ({@code rope_parameters}, {@code dtype}),
 * plus whatever family keys the test adds.
 */
public final class FamilyCheckpoint {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final Map<String, String> ARCHITECTURES = Map.of("llama", "LlamaForCausalLM", "mistral",
            "MistralForCausalLM", "qwen2", "Qwen2ForCausalLM", "qwen3", "Qwen3ForCausalLM", "gemma", "GemmaForCausalLM",
            "gemma2", "Gemma2ForCausalLM", "phi3", "Phi3ForCausalLM");

    /** What the checkpoint computes. */
    public final ReferenceDecoder.Spec spec;
    /** The weights by Hugging Face name, row-major. */
    public final Map<String, float[]> weights = new LinkedHashMap<>();
    /** Their shapes. */
    public final Map<String, long[]> shapes = new LinkedHashMap<>();
    private final Random random;

    /** Draws the weights of {@code spec} from {@code seed}. */
    public FamilyCheckpoint(ReferenceDecoder.Spec spec, long seed) {
        this.spec = spec;
        this.random = new Random(seed);
        int h = spec.hidden();
        int q = spec.heads() * spec.headDim();
        int kv = spec.kvHeads() * spec.headDim();
        put("model.embed_tokens.weight", spec.scaledEmbedding() ? 1 / Math.sqrt(h) : 1.0, spec.vocab(), h);
        for (int l = 0; l < spec.layers(); l++) {
            String p = "model.layers." + l + ".";
            norm(p + "input_layernorm.weight", h);
            if (spec.fused()) {
                linear(p + "self_attn.qkv_proj", q + 2 * kv, h);
            } else {
                linear(p + "self_attn.q_proj", q, h);
                linear(p + "self_attn.k_proj", kv, h);
                linear(p + "self_attn.v_proj", kv, h);
            }
            linear(p + "self_attn.o_proj", h, q);
            if (spec.qkNorm()) {
                norm(p + "self_attn.q_norm.weight", spec.headDim());
                norm(p + "self_attn.k_norm.weight", spec.headDim());
            }
            norm(p + "post_attention_layernorm.weight", h);
            if (spec.sandwich()) {
                norm(p + "pre_feedforward_layernorm.weight", h);
                norm(p + "post_feedforward_layernorm.weight", h);
            }
            if (spec.fused()) {
                linear(p + "mlp.gate_up_proj", 2 * spec.inter(), h);
            } else {
                linear(p + "mlp.gate_proj", spec.inter(), h);
                linear(p + "mlp.up_proj", spec.inter(), h);
            }
            linear(p + "mlp.down_proj", h, spec.inter());
        }
        norm("model.norm.weight", h);
        if (!spec.tied()) {
            put("lm_head.weight", 2.0 / Math.sqrt(h), spec.vocab(), h);
        }
    }

    private void linear(String name, int out, int in) {
        put(name + ".weight", 1.5 / Math.sqrt(in), out, in);
        if (spec.biased().contains(name.substring(name.lastIndexOf('.') + 1))) {
            put(name + ".bias", 0.2, out);
        }
    }

    /** Near 1 for {@code x * w} norms, near 0 for Gemma's {@code x * (1 + w)}. */
    private void norm(String name, int width) {
        float[] v = new float[width];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) ((spec.offsetNorm() ? 0 : 1) + 0.2 * random.nextGaussian());
        }
        weights.put(name, v);
        shapes.put(name, new long[] {width});
    }

    private void put(String name, double scale, long... shape) {
        weights.put(name, gaussian(random, scale, shape));
        shapes.put(name, shape);
    }

    /** A tensor of {@code shape} drawn from {@code N(0, scale^2)}, row-major. */
    public static float[] gaussian(Random random, double scale, long... shape) {
        long n = 1;
        for (long d : shape) {
            n *= d;
        }
        float[] v = new float[(int) n];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) (scale * random.nextGaussian());
        }
        return v;
    }

    /**
     * One spec of each family, {@code layers} deep over {@code vocab} tokens, with the options that change which
     * tensors exist (biases, q/k norms, fused projections, sandwich norms) and a window where the family has one.
     */
    public static List<ReferenceDecoder.Spec> oneOfEachFamily(int layers, int vocab) {
        Integer[] windows = Collections.nCopies(layers, 3).toArray(Integer[]::new);
        Integer[] alternating = new Integer[layers];
        for (int i = 0; i < layers; i++) {
            alternating[i] = i % 2 == 0 ? 3 : 0;
        }
        return List.of(ReferenceDecoder.Spec.of("llama", 32, 48, layers, 4, 2, 8, vocab),
                ReferenceDecoder.Spec.of("mistral", 32, 48, layers, 4, 2, 8, vocab).with(b -> b.windows(windows)),
                ReferenceDecoder.Spec.of("qwen2", 32, 48, layers, 4, 2, 8, vocab)
                        .with(b -> b.biased("q_proj", "k_proj", "v_proj").tied(true)),
                ReferenceDecoder.Spec.of("qwen3", 32, 48, layers, 4, 2, 16, vocab).with(b -> b.qkNorm(true)),
                ReferenceDecoder.Spec.of("gemma", 32, 48, layers, 4, 1, 16, vocab).with(b -> b.offsetNorm(true)
                        .scaledEmbedding(true).activation("gelu_tanh").tied(true)),
                ReferenceDecoder.Spec.of("gemma2", 32, 48, layers, 4, 2, 16, vocab).with(b -> b.offsetNorm(true)
                        .scaledEmbedding(true).activation("gelu_tanh").sandwich(true).scoreScale(0.25).attnCap(50.0)
                        .finalCap(30.0).windows(alternating).tied(true)),
                ReferenceDecoder.Spec.of("phi3", 32, 48, layers, 4, 4, 8, vocab).with(b -> b.fused(true).eps(1e-5)));
    }

    /** The family keys that make config.json say what a spec of {@link #oneOfEachFamily} means. */
    public static Map<String, Object> familyKeys(ReferenceDecoder.Spec spec) {
        return switch (spec.modelType()) {
            case "mistral" -> Map.of("sliding_window", 3);
            case "gemma2" -> Map.of("hidden_activation", "gelu_pytorch_tanh", "query_pre_attn_scalar", 16,
                    "sliding_window", 3);
            default -> Map.of();
        };
    }

    /** The names of the block projections' weights, which a quantizing loader packs. */
    public List<String> linearWeights() {
        return weights.keySet().stream().filter(n -> n.startsWith("model.layers.") && n.endsWith("_proj.weight"))
                .toList();
    }

    /** The float64 reference on these weights. */
    public ReferenceDecoder reference() {
        return new ReferenceDecoder(spec, weights);
    }

    /** The float64 reference on these weights with every block projection through {@code quantizer}'s round trip. */
    public ReferenceDecoder quantizedReference(BlockwiseQuantizer quantizer) {
        Map<String, float[]> rounded = new LinkedHashMap<>(weights);
        for (String name : linearWeights()) {
            rounded.put(name, quantizer.dequantize(quantizer.quantize(weights.get(name), shapes.get(name))));
        }
        return new ReferenceDecoder(spec, rounded);
    }

    /**
     * The float64 reference on these weights with every block projection replaced by its round trip through
     * {@code format} (quantized from float32, dequantized on the host), which the format's own tests hold to the
     * upstream quantizer.
     */
    public ReferenceDecoder formatReference(BaseFormat format) throws ModelException {
        Map<String, float[]> rounded = new LinkedHashMap<>(weights);
        for (String name : linearWeights()) {
            rounded.put(name, format.quantize(FloatSource.of(weights.get(name)), shapes.get(name)).dequantize());
        }
        return new ReferenceDecoder(spec, rounded);
    }

    /**
     * The config.json of the spec, in v5's spelling ({@code rope_parameters}, {@code dtype}) or 4.x's, with
     * {@code extras} (family keys; a null value writes JSON null) put last, overriding.
     */
    public ObjectNode config(boolean v5, Map<String, Object> extras) {
        ReferenceDecoder.Spec s = spec;
        ObjectNode o = JSON.createObjectNode();
        o.putArray("architectures").add(ARCHITECTURES.get(s.modelType()));
        o.put("model_type", s.modelType());
        o.put("hidden_size", s.hidden());
        o.put("intermediate_size", s.inter());
        o.put("num_hidden_layers", s.layers());
        o.put("num_attention_heads", s.heads());
        o.put("num_key_value_heads", s.kvHeads());
        o.put("head_dim", s.headDim());
        o.put("vocab_size", s.vocab());
        o.put("rms_norm_eps", s.eps());
        o.put("max_position_embeddings", 2048);
        o.put("tie_word_embeddings", s.tied());
        o.put("hidden_act", switch (s.activation()) {
            case "gelu_tanh" -> "gelu_pytorch_tanh";
            default -> s.activation();
        });
        o.put("bos_token_id", 1);
        o.put("eos_token_id", 2);
        ObjectNode rope = JSON.createObjectNode();
        ReferenceDecoder.Rope r = s.rope();
        if (!r.type().equals("none")) {
            rope.put("rope_type", r.type());
            if (!r.type().equals("longrope")) {
                rope.put("factor", r.factor());
            }
            if (r.type().equals("longrope")) {
                ArrayNode shortFactor = rope.putArray("short_factor");
                r.shortFactor().forEach(shortFactor::add);
                ArrayNode longFactor = rope.putArray("long_factor");
                r.longFactor().forEach(longFactor::add);
            }
        }
        if (v5) {
            if (!rope.has("rope_type")) {
                rope.put("rope_type", "default");
            }
            rope.put("rope_theta", s.theta());
            o.set("rope_parameters", rope);
            o.put("dtype", "float32");
        } else {
            o.put("rope_theta", s.theta());
            if (rope.isEmpty()) {
                o.putNull("rope_scaling");
            } else {
                o.set("rope_scaling", rope);
            }
            o.put("torch_dtype", "float32");
        }
        extras.forEach((key, value) -> o.set(key, JSON.valueToTree(value)));
        return o;
    }

    /** Writes the weights as {@code dtype} safetensors and {@code config} as config.json into {@code dir}. */
    public Path write(Path dir, DType dtype, ObjectNode config) throws IOException, ModelException {
        Files.createDirectories(dir);
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).build()) {
            for (Map.Entry<String, float[]> e : weights.entrySet()) {
                writer.addFloats(e.getKey(), dtype, shapes.get(e.getKey()), e.getValue());
            }
        }
        Files.writeString(dir.resolve("config.json"), JSON.writerWithDefaultPrettyPrinter().writeValueAsString(config));
        return dir;
    }
}
