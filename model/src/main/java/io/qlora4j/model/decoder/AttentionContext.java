package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import java.util.List;

/**
 * What every block of one forward call shares: the RoPE tables for the call's positions and the additive
 * attention masks, one for full causal layers and one for sliding-window layers (each built only when some layer
 * uses it). Build it with {@link CausalLM#context}.
 *
 * @param cos RoPE cosines, float32 {@code [b or 1, s, rotary_dim]}
 * @param sin RoPE sines, float32 {@code [b or 1, s, rotary_dim]}
 * @param fullMask additive mask {@code [b or 1, 1, s, past + s]} of the full-attention layers: 0 where a query may
 *     attend to a key, the most negative float where it may not; null when every layer slides
 * @param slidingMask the same for the sliding-window layers; null when no layer slides
 */
public record AttentionContext(NDArray cos, NDArray sin, NDArray fullMask, NDArray slidingMask)
        implements AutoCloseable {

    /**
     * The context of a forward call of a {@code config} model at {@code positions} ({@code [b or 1, s]} float32)
     * after {@code pastLength} cached tokens, with an optional {@code [b, past + s]} padding mask: what a job that
     * runs a model one block at a time (AQLM's calibration) builds without the model.
     */
    public static AttentionContext of(DecoderConfig config, NDArray positions, long pastLength,
            NDArray attentionMask) {
        return of(config, new RotaryEmbedding(config), positions, pastLength, attentionMask);
    }

    static AttentionContext of(DecoderConfig config, RotaryEmbedding rope, NDArray positions, long pastLength,
            NDArray attentionMask) {
        NDList cosSin = rope.cosSin(positions);
        NDManager manager = positions.getManager();
        long seqLen = positions.getShape().get(1);
        List<Boolean> sliding = config.slidingLayers();
        NDArray full = sliding.contains(false)
                ? CausalMask.build(manager, seqLen, pastLength, attentionMask, null) : null;
        NDArray window = sliding.contains(true)
                ? CausalMask.build(manager, seqLen, pastLength, attentionMask, config.slidingWindow()) : null;
        return new AttentionContext(cosSin.get(0), cosSin.get(1), full, window);
    }

    /** The mask of a layer that slides ({@code sliding}) or attends to the whole causal prefix. */
    public NDArray mask(boolean sliding) {
        NDArray mask = sliding ? slidingMask : fullMask;
        if (mask == null) {
            throw new IllegalStateException("this context has no " + (sliding ? "sliding-window" : "full") + " mask");
        }
        return mask;
    }

    /** Releases the arrays. */
    @Override
    public void close() {
        cos.close();
        sin.close();
        if (fullMask != null) {
            fullMask.close();
        }
        if (slidingMask != null) {
            slidingMask.close();
        }
    }
}
