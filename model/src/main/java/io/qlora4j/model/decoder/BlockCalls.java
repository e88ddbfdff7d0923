package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import io.qlora4j.model.LinearLayer;

/**
 * How a decoder block's forward pass applies its projections and hands its residual stream from the attention half
 * to the MLP half. {@link #PLAIN} applies each projection and passes the stream on unchanged, which is every ordinary
 * call (inference, evaluation, a training forward with or without recompute). A selective recompute supplies its own:
 * in the forward pass it keeps some projections' base products, and when the block is recomputed for its backward
 * pass it hands them back instead of multiplying again and cuts the graph at their inputs and at the mid-block
 * stream, so that it can backpropagate one piece at a time and add the kept products' input gradients itself.
 *
 * <p>A forward pass that records no graph (a recomputing step's first pass) says so ({@link #graphFree}); the block
 * then overwrites its own temporaries in place where an op allows it, for the same bits with fewer arrays.
 */
public interface BlockCalls {
    /** Each projection applied to its input, the stream passed on. */
    BlockCalls PLAIN = new BlockCalls() {
        @Override
        public NDArray project(String name, LinearLayer layer, NDArray x) {
            return layer.forward(x);
        }

        @Override
        public NDArray midBlock(NDArray hidden) {
            return hidden;
        }
    };

    /**
     * {@link #PLAIN} for a forward pass that records no graph ({@link #graphFree}): each projection applied by
     * {@link LinearLayer#forwardGraphFree}.
     */
    BlockCalls GRAPH_FREE = new BlockCalls() {
        @Override
        public NDArray project(String name, LinearLayer layer, NDArray x) {
            return layer.forwardGraphFree(x);
        }

        @Override
        public NDArray midBlock(NDArray hidden) {
            return PLAIN.midBlock(hidden);
        }

        @Override
        public boolean graphFree() {
            return true;
        }
    };

    /**
     * {@code layer.forward(x)} for the projection called {@code name} (a block's Hugging Face name,
     * {@code self_attn.q_proj}), or an equal value the caller obtains otherwise; the result belongs to the current
     * scope as the layer's would.
     */
    NDArray project(String name, LinearLayer layer, NDArray x);

    /** The residual stream after the attention half, {@code [b, s, hidden]}, as the MLP half is to read it. */
    NDArray midBlock(NDArray hidden);

    /**
     * Whether the forward pass these calls serve records no graph (autograd off), so that the block may write into
     * the arrays it made itself (default false: a graph may need them).
     */
    default boolean graphFree() {
        return false;
    }
}
