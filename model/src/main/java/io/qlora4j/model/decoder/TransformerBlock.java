package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.GraphCasts;
import io.qlora4j.model.GraphScalars;
import io.qlora4j.model.LinearLayer;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The generic pre-norm decoder layer with transformers' semantics, its parts chosen by the config
 * ({@link DecoderParts}): {@code h = x + o(attn(rope(q), rope(k), v))} on the normed input, then
 * {@code h + down(act(gate(n)) * up(n))} on the normed {@code h}; q/k/v and gate/up may come from fused
 * projections, q and k may pass a per-head norm, RoPE may rotate part of each head, scores may be soft-capped, and
 * the attention and MLP outputs may be normed too (Gemma 2). The projections are {@link LinearLayer}s addressed by
 * their Hugging Face names so that adapters can replace them.
 */
public final class TransformerBlock implements DecoderBlock {
    private final DecoderConfig config;
    private final int index;
    private final Map<String, NDArray> norms;
    private final Map<String, LinearLayer> linears = new LinkedHashMap<>();

    /**
     * Assembles layer {@code index} from its norm weights keyed by {@link DecoderConfig#normShapes()} and its
     * projections keyed by {@link DecoderConfig#linearNames()}; shapes are checked against the config. The block
     * owns them all.
     */
    public TransformerBlock(DecoderConfig config, int index, Map<String, NDArray> norms,
            Map<String, ? extends LinearLayer> linears) {
        this.config = config;
        this.index = index;
        Map<String, NDArray> checked = new LinkedHashMap<>();
        for (Map.Entry<String, long[]> e : config.normShapes().entrySet()) {
            NDArray weight = norms.get(e.getKey());
            Shape expected = new Shape(e.getValue());
            if (weight == null || !weight.getShape().equals(expected)) {
                throw new IllegalArgumentException("layer " + index + ": " + e.getKey() + " must be " + expected
                        + ", got " + (weight == null ? "none" : weight.getShape()));
            }
            checked.put(e.getKey(), weight);
        }
        this.norms = Collections.unmodifiableMap(checked);
        for (String name : config.linearNames()) {
            LinearLayer layer = linears.get(name);
            if (layer == null) {
                throw new IllegalArgumentException("layer " + index + ": missing " + name);
            }
            setLinear(name, layer);
        }
    }

    @Override
    public int index() {
        return index;
    }

    @Override
    public List<String> linearNames() {
        return config.linearNames();
    }

    @Override
    public Map<String, NDArray> norms() {
        return norms;
    }

    @Override
    public LinearLayer linear(String name) {
        LinearLayer layer = linears.get(name);
        if (layer == null) {
            throw new IllegalArgumentException("no projection " + name + " (expected one of " + linearNames() + ")");
        }
        return layer;
    }

    @Override
    public LinearLayer setLinear(String name, LinearLayer layer) {
        long[] expected = config.inOut(name);
        if (layer.inFeatures() != expected[0] || layer.outFeatures() != expected[1]) {
            throw new IllegalArgumentException("layer " + index + ": " + name + " must map " + expected[0] + " -> "
                    + expected[1] + ", got " + layer.inFeatures() + " -> " + layer.outFeatures());
        }
        return linears.put(name, layer);
    }

    @Override
    public NDArray forward(NDArray hidden, AttentionContext context, KvCache cache) {
        return forward(hidden, context, cache, BlockCalls.PLAIN);
    }

    @Override
    public NDArray forward(NDArray hidden, AttentionContext context, KvCache cache, BlockCalls calls) {
        boolean sandwich = config.parts().sandwichNorms();
        return Scoped.run(() -> {
            NDArray attn = attention(norm("input_layernorm", hidden), context, cache, calls);
            NDArray h = calls.midBlock(residual(hidden, sandwich ? norm("post_attention_layernorm", attn) : attn, calls));
            NDArray mlp = mlp(norm(sandwich ? "pre_feedforward_layernorm" : "post_attention_layernorm", h), calls);
            return residual(h, sandwich ? norm("post_feedforward_layernorm", mlp) : mlp, calls);
        });
    }

    /**
     * {@code stream + branch}; without a graph into the branch, which this block made and reads no more (the same
     * bits: float addition commutes).
     */
    private static NDArray residual(NDArray stream, NDArray branch, BlockCalls calls) {
        return calls.graphFree() && branch.getDataType() == stream.getDataType() ? branch.addi(stream)
                : stream.add(branch);
    }

    /** The projection {@code name} applied to {@code x} through {@code calls}. */
    private NDArray project(String name, NDArray x, BlockCalls calls) {
        return calls.project(name, linears.get(name), x);
    }

    /** {@code down(act(gate(n)) * up(n))}, gate and up from their own projections or the first and second half of one. */
    private NDArray mlp(NDArray n, BlockCalls calls) {
        NDArray gate;
        NDArray up;
        if (config.parts().fusedGateUp()) {
            NDArray gateUp = project(DecoderConfig.GATE_UP_PROJ, n, calls);
            long inter = config.intermediateSize();
            gate = gateUp.get("..., :" + inter);
            up = gateUp.get("..., " + inter + ":");
        } else {
            gate = project("mlp.gate_proj", n, calls);
            up = null;
        }
        MlpActivation activation = config.parts().activation();
        NDArray act = calls.graphFree() ? activation.applyGraphFree(gate) : activation.apply(gate);
        NDArray upValue = up != null ? up : project("mlp.up_proj", n, calls);
        return project("mlp.down_proj", calls.graphFree() ? act.muli(upValue) : act.mul(upValue), calls);
    }

    private NDArray norm(String name, NDArray x) {
        return config.parts().norm().apply(x, norms.get(name), config.rmsNormEps());
    }

    /** Causal grouped-query attention; query head h uses key/value head {@code h / (heads / kv_heads)}. */
    private NDArray attention(NDArray x, AttentionContext context, KvCache cache, BlockCalls calls) {
        long b = x.getShape().get(0);
        long s = x.getShape().get(1);
        int heads = config.numAttentionHeads();
        int kvHeads = config.numKeyValueHeads();
        int hd = config.headDim();
        long groups = heads / kvHeads;
        // the rotary tables are constants: a plain cast to the compute dtype, as transformers does
        NDArray cos = context.cos().expandDims(1).toType(x.getDataType(), false);
        NDArray sin = context.sin().expandDims(1).toType(x.getDataType(), false);
        NDArray[] qkv = projectQkv(x, calls);
        NDArray q = rope(queryKeyNorm("self_attn.q_norm", heads(qkv[0], b, s, heads)), cos, sin);
        NDArray k = rope(queryKeyNorm("self_attn.k_norm", heads(qkv[1], b, s, kvHeads)), cos, sin);
        NDArray v = heads(qkv[2], b, s, kvHeads);
        if (cache != null) {
            NDArray[] kv = cache.append(index, k, v);
            k = kv[0];
            v = kv[1];
        }
        long t = k.getShape().get(2);
        Double scalar = config.parts().queryPreAttnScalar();
        double scale = scalar != null ? Math.pow(scalar, -0.5) : 1.0 / Math.sqrt(hd);
        NDArray grouped = GraphScalars.times(q, scale).reshape(b, kvHeads, groups * s, hd);
        NDArray scores = grouped.matMul(k.transpose(0, 1, 3, 2)).reshape(b, kvHeads, groups, s, t);
        Double softcap = config.parts().attnLogitSoftcapping();
        if (softcap != null) {
            scores = SoftCap.apply(scores, softcap);
        }
        NDArray mask = context.mask(config.windowOf(index) != null);
        // the float32 mask promotes the scores: softmax runs in float32, then back to the values' dtype
        NDArray probs = GraphCasts.to(scores.add(mask.expandDims(1)).softmax(-1), v.getDataType())
                .reshape(b, kvHeads, groups * s, t);
        NDArray out = probs.matMul(v).reshape(b, heads, s, hd).transpose(0, 2, 1, 3).reshape(b, s, (long) heads * hd);
        return project("self_attn.o_proj", out, calls);
    }

    /** q, k and v {@code [b, s, heads * hd]}: from their own projections, or the row blocks of the fused one. */
    private NDArray[] projectQkv(NDArray x, BlockCalls calls) {
        if (!config.parts().fusedQkv()) {
            return new NDArray[] {project("self_attn.q_proj", x, calls), project("self_attn.k_proj", x, calls),
                project("self_attn.v_proj", x, calls)};
        }
        NDArray qkv = project(DecoderConfig.QKV_PROJ, x, calls);
        int q = config.queryDim();
        int kv = config.keyValueDim();
        return new NDArray[] {qkv.get("..., :" + q), qkv.get("..., " + q + ":" + (q + kv)), qkv.get("..., " + (q + kv) + ":")};
    }

    /** Qwen3's per-head RMSNorm of {@code [b, n, s, hd]} over hd, when the block has one. */
    private NDArray queryKeyNorm(String name, NDArray x) {
        return config.parts().qkNorm() ? norm(name, x) : x;
    }

    /** {@code [b, s, n * hd]} to {@code [b, n, s, hd]}. */
    private NDArray heads(NDArray projected, long b, long s, int n) {
        return projected.reshape(b, s, n, config.headDim()).transpose(0, 2, 1, 3);
    }

    /**
     * {@code x * cos + rotate_half(x) * sin} with {@code rotate_half(x) = cat(-x[d/2:], x[:d/2])} over the first
     * {@code d = rotary_dim} features; the others pass unchanged (partial rotary, Phi-3's
     * {@code apply_rotary_pos_emb}).
     */
    private NDArray rope(NDArray x, NDArray cos, NDArray sin) {
        int rotary = config.rotaryDim();
        if (rotary == config.headDim()) {
            return rotate(x, cos, sin, rotary / 2);
        }
        return rotate(x.get("..., :" + rotary), cos, sin, rotary / 2).concat(x.get("..., " + rotary + ":"), -1);
    }

    private static NDArray rotate(NDArray x, NDArray cos, NDArray sin, int half) {
        NDArray rotated = x.get("..., " + half + ":").neg().concat(x.get("..., :" + half), -1);
        return x.mul(cos).add(rotated.mul(sin));
    }

    @Override
    public long bytes() {
        long total = 0;
        for (NDArray norm : norms.values()) {
            total += norm.size() * norm.getDataType().getNumOfBytes();
        }
        for (LinearLayer layer : linears.values()) {
            total += layer.bytes();
        }
        return total;
    }

    @Override
    public void close() {
        norms.values().forEach(NDArray::close);
        linears.values().forEach(LinearLayer::close);
    }
}
