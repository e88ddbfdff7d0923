package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import io.qlora4j.model.LinearLayer;
import java.util.List;
import java.util.Map;

/**
 * One decoder layer of a {@link CausalLM}: its forward pass, and its projections addressed by their Hugging Face
 * names ({@code self_attn.q_proj}, {@code mlp.gate_up_proj}, ...) so that adapters can wrap them.
 */
public interface DecoderBlock extends AutoCloseable {
    /** The layer number. */
    int index();

    /**
     * Runs the layer on {@code hidden [b, s, hidden]}; with a cache the new keys/values are appended and attention
     * covers the cached tokens too. The result is in hidden's manager; temporaries are released.
     */
    NDArray forward(NDArray hidden, AttentionContext context, KvCache cache);

    /**
     * {@link #forward(NDArray, AttentionContext, KvCache)} with every projection applied, and the residual stream
     * between the attention and the MLP half passed, through {@code calls} (a selective recompute's hook).
     */
    NDArray forward(NDArray hidden, AttentionContext context, KvCache cache, BlockCalls calls);

    /** The projection names, as in {@code model.layers.{i}.<name>.weight}, in block order. */
    List<String> linearNames();

    /** The projection called {@code name} (one of {@link #linearNames()}). */
    LinearLayer linear(String name);

    /**
     * Replaces the projection {@code name} (an adapter wrapping the base one) and returns the previous one; the new
     * layer must have the same in/out features.
     */
    LinearLayer setLinear(String name, LinearLayer layer);

    /** The norm weights by module name ({@code input_layernorm}, ...), in block order. */
    Map<String, NDArray> norms();

    /** Bytes held by the block's norms and projections. */
    long bytes();

    /** Releases the norms and projections. */
    @Override
    void close();
}
