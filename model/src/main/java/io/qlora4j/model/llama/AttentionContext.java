package io.qlora4j.model.llama;

import ai.djl.ndarray.NDArray;

/**
 * What every block of one forward call shares: the RoPE tables for the call's positions and the additive
 * attention mask. Build it with {@link LlamaModel#context}, or directly for packed sequences (per-row
 * positions and a block-diagonal mask).
 *
 * @param cos RoPE cosines, float32 {@code [b or 1, s, head_dim]}
 * @param sin RoPE sines, float32 {@code [b or 1, s, head_dim]}
 * @param mask additive mask {@code [b or 1, 1, s, past + s]}: 0 where a query may attend to a key, the most
 *     negative float where it may not
 */
public record AttentionContext(NDArray cos, NDArray sin, NDArray mask) implements AutoCloseable {

    /** Releases the three arrays. */
    @Override
    public void close() {
        cos.close();
        sin.close();
        mask.close();
    }
}
