package io.qlora4j.model.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import ai.djl.nn.Activation;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.GraphCasts;
import io.qlora4j.model.GraphScalars;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * One Llama decoder layer with transformers' semantics: {@code h = x + o(attn(rope(q), rope(k), v))} on
 * the RMS-normed input, then {@code h + down(silu(gate(n)) * up(n))} on the RMS-normed {@code h}. The seven
 * projections are {@link LinearLayer}s addressed by their Hugging Face names so that adapters can
 * replace them.
 */
public final class LlamaBlock implements AutoCloseable {
    /** The projection names, as in {@code model.layers.{i}.<name>.weight}. */
    public static final List<String> LINEAR_NAMES = List.of("self_attn.q_proj", "self_attn.k_proj",
            "self_attn.v_proj", "self_attn.o_proj", "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj");

    private final LlamaConfig config;
    private final int index;
    private final NDArray inputLayernorm;
    private final NDArray postAttentionLayernorm;
    private final Map<String, LinearLayer> linears = new LinkedHashMap<>();

    /**
     * Assembles layer {@code index} from its two norm weights {@code [hidden]} and the seven projections
     * keyed by {@link #LINEAR_NAMES}; shapes are checked against the config. The block owns them all.
     */
    public LlamaBlock(LlamaConfig config, int index, NDArray inputLayernorm, NDArray postAttentionLayernorm,
            Map<String, ? extends LinearLayer> linears) {
        Shape norm = new Shape(config.hiddenSize());
        if (!inputLayernorm.getShape().equals(norm) || !postAttentionLayernorm.getShape().equals(norm)) {
            throw new IllegalArgumentException("layer " + index + ": norm weights must be " + norm + ", got "
                    + inputLayernorm.getShape() + " and " + postAttentionLayernorm.getShape());
        }
        this.config = config;
        this.index = index;
        this.inputLayernorm = inputLayernorm;
        this.postAttentionLayernorm = postAttentionLayernorm;
        for (String name : LINEAR_NAMES) {
            LinearLayer layer = linears.get(name);
            if (layer == null) {
                throw new IllegalArgumentException("layer " + index + ": missing " + name);
            }
            setLinear(name, layer);
        }
    }

    /** The layer number. */
    public int index() {
        return index;
    }

    /** {@code input_layernorm.weight [hidden]}. */
    public NDArray inputLayernorm() {
        return inputLayernorm;
    }

    /** {@code post_attention_layernorm.weight [hidden]}. */
    public NDArray postAttentionLayernorm() {
        return postAttentionLayernorm;
    }

    /** The projection called {@code name} (one of {@link #LINEAR_NAMES}). */
    public LinearLayer linear(String name) {
        LinearLayer layer = linears.get(name);
        if (layer == null) {
            throw new IllegalArgumentException("no projection " + name + " (expected one of " + LINEAR_NAMES + ")");
        }
        return layer;
    }

    /**
     * Replaces the projection {@code name} (an adapter wrapping the frozen one) and returns the previous
     * one; the new layer must have the same in/out features.
     */
    public LinearLayer setLinear(String name, LinearLayer layer) {
        long[] expected = inOut(config, name);
        if (layer.inFeatures() != expected[0] || layer.outFeatures() != expected[1]) {
            throw new IllegalArgumentException("layer " + index + ": " + name + " must map " + expected[0] + " -> "
                    + expected[1] + ", got " + layer.inFeatures() + " -> " + layer.outFeatures());
        }
        return linears.put(name, layer);
    }

    /** {in, out} features of the projection {@code name} under {@code config}. */
    static long[] inOut(LlamaConfig config, String name) {
        long hidden = config.hiddenSize();
        return switch (name) {
            case "self_attn.q_proj" -> new long[] {hidden, config.queryDim()};
            case "self_attn.k_proj", "self_attn.v_proj" -> new long[] {hidden, config.keyValueDim()};
            case "self_attn.o_proj" -> new long[] {config.queryDim(), hidden};
            case "mlp.gate_proj", "mlp.up_proj" -> new long[] {hidden, config.intermediateSize()};
            case "mlp.down_proj" -> new long[] {config.intermediateSize(), hidden};
            default -> throw new IllegalArgumentException(
                    "no projection " + name + " (expected one of " + LINEAR_NAMES + ")");
        };
    }

    /**
     * Runs the layer on {@code hidden [b, s, hidden]}; with a cache the new keys/values are appended and
     * attention covers the cached tokens too. The result is in hidden's manager; temporaries are released.
     */
    public NDArray forward(NDArray hidden, AttentionContext context, KvCache cache) {
        return Scoped.run(() -> {
            NDArray attn = attention(RmsNorm.apply(hidden, inputLayernorm, config.rmsNormEps()), context, cache);
            NDArray h = hidden.add(attn);
            NDArray n = RmsNorm.apply(h, postAttentionLayernorm, config.rmsNormEps());
            NDArray gate = linears.get("mlp.gate_proj").forward(n);
            NDArray act = gate.mul(Activation.sigmoid(gate)).mul(linears.get("mlp.up_proj").forward(n));
            return h.add(linears.get("mlp.down_proj").forward(act));
        });
    }

    /** Causal grouped-query attention; query head h uses key/value head {@code h / (heads / kv_heads)}. */
    private NDArray attention(NDArray x, AttentionContext context, KvCache cache) {
        long b = x.getShape().get(0);
        long s = x.getShape().get(1);
        int heads = config.numAttentionHeads();
        int kvHeads = config.numKeyValueHeads();
        int hd = config.headDim();
        long groups = heads / kvHeads;
        // the rotary tables are constants: a plain cast to the compute dtype, as transformers does
        NDArray cos = context.cos().expandDims(1).toType(x.getDataType(), false);
        NDArray sin = context.sin().expandDims(1).toType(x.getDataType(), false);
        NDArray q = rope(heads(linears.get("self_attn.q_proj").forward(x), b, s, heads), cos, sin);
        NDArray k = rope(heads(linears.get("self_attn.k_proj").forward(x), b, s, kvHeads), cos, sin);
        NDArray v = heads(linears.get("self_attn.v_proj").forward(x), b, s, kvHeads);
        if (cache != null) {
            NDArray[] kv = cache.append(index, k, v);
            k = kv[0];
            v = kv[1];
        }
        long t = k.getShape().get(2);
        NDArray grouped = GraphScalars.times(q, 1.0 / Math.sqrt(hd)).reshape(b, kvHeads, groups * s, hd);
        NDArray scores = grouped.matMul(k.transpose(0, 1, 3, 2)).reshape(b, kvHeads, groups, s, t);
        // the float32 mask promotes the scores: softmax runs in float32, then back to the values' dtype
        NDArray probs = GraphCasts.to(scores.add(context.mask().expandDims(1)).softmax(-1), v.getDataType())
                .reshape(b, kvHeads, groups * s, t);
        NDArray out = probs.matMul(v).reshape(b, heads, s, hd).transpose(0, 2, 1, 3).reshape(b, s, (long) heads * hd);
        return linears.get("self_attn.o_proj").forward(out);
    }

    /** {@code [b, s, n * hd]} to {@code [b, n, s, hd]}. */
    private NDArray heads(NDArray projected, long b, long s, int n) {
        return projected.reshape(b, s, n, config.headDim()).transpose(0, 2, 1, 3);
    }

    /** {@code x * cos + rotate_half(x) * sin} with {@code rotate_half(x) = cat(-x[hd/2:], x[:hd/2])}. */
    private NDArray rope(NDArray x, NDArray cos, NDArray sin) {
        int half = config.headDim() / 2;
        NDArray rotated = x.get("..., " + half + ":").neg().concat(x.get("..., :" + half), -1);
        return x.mul(cos).add(rotated.mul(sin));
    }

    /** Bytes held by the block's norms and projections. */
    public long bytes() {
        long total = (inputLayernorm.size() + postAttentionLayernorm.size())
                * inputLayernorm.getDataType().getNumOfBytes();
        for (LinearLayer layer : linears.values()) {
            total += layer.bytes();
        }
        return total;
    }

    /** Releases the norms and projections. */
    @Override
    public void close() {
        inputLayernorm.close();
        postAttentionLayernorm.close();
        linears.values().forEach(LinearLayer::close);
    }
}
