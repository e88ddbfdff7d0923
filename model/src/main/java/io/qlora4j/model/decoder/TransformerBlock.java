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
 * The generic pre-norm decoder layer with transformers' semantics, its parts chosen by the config:
 * {@code h = x + o(attn(rope(q), rope(k), v))} on the normed input, then {@code h + down(act(gate(n)) * up(n))} on
 * the normed {@code h}. The projections are {@link LinearLayer}s addressed by their Hugging Face names so that
 * adapters can replace them.
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
        return Scoped.run(() -> {
            NDArray attn = attention(norm("input_layernorm", hidden), context, cache);
            NDArray h = hidden.add(attn);
            NDArray n = norm("post_attention_layernorm", h);
            NDArray gate = linears.get("mlp.gate_proj").forward(n);
            NDArray act = config.parts().activation().apply(gate).mul(linears.get("mlp.up_proj").forward(n));
            return h.add(linears.get("mlp.down_proj").forward(act));
        });
    }

    private NDArray norm(String name, NDArray x) {
        return config.parts().norm().apply(x, norms.get(name), config.rmsNormEps());
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
        NDArray mask = context.mask(config.windowOf(index) != null);
        // the float32 mask promotes the scores: softmax runs in float32, then back to the values' dtype
        NDArray probs = GraphCasts.to(scores.add(mask.expandDims(1)).softmax(-1), v.getDataType())
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
