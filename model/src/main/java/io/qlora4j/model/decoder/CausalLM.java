package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.TokenEmbedding;

/**
 * A decoder-only causal language model on DJL NDArrays, whatever its family: the embedding, the decoder blocks,
 * the final norm and lm_head, with transformers' semantics. This is what the trainer, adapters, generation,
 * evaluation, export checks and benchmarks drive.
 *
 * <p>The trainer drives the pieces one by one: {@link #embed}, {@link #context}, {@link #block}(i)
 * {@code .forward}, {@link #finalNormAndHead}; {@code finalNormAndHead(hiddenStates(ids, context, cache))} runs a
 * whole call under a context of one's own (explicit positions, packing masks). Every call keeps its temporaries
 * in a scope, so memory stays flat across calls.
 */
public interface CausalLM extends AutoCloseable {
    /** The architecture. */
    DecoderConfig config();

    /** {@code embed_tokens [vocab, hidden]}. */
    TokenEmbedding embedTokens();

    /** The manager that holds the weights: per-call managers are made under it. */
    NDManager manager();

    /** The number of decoder blocks. */
    int numLayers();

    /** Decoder block {@code i}. */
    DecoderBlock block(int i);

    /** The final norm weight {@code [hidden]}. */
    NDArray norm();

    /** The output projection (reading the embedding array when tied). */
    LinearLayer lmHead();

    /** The dtype the blocks compute in. */
    DataType computeType();

    /** Looks up {@code ids [b, s]} (integers) and returns {@code [b, s, hidden]} in the compute dtype, in ids' manager. */
    NDArray embed(NDArray ids);

    /**
     * The context for {@code seqLen} new tokens after {@code pastLength} cached ones, at positions
     * {@code pastLength .. pastLength + seqLen - 1}; {@code attentionMask} is null or {@code [b, past + s]}
     * (1 real, 0 padding).
     */
    AttentionContext context(NDManager manager, long seqLen, long pastLength, NDArray attentionMask);

    /**
     * The context for explicit {@code positions [b or 1, s]} (e.g. counted from the first real token of a
     * left-padded row, or restarting for each packed example); the causal mask still follows token order, and a
     * key mask numbering packed examples (1, 2, ..., 0 for padding) keeps examples apart.
     */
    AttentionContext context(NDArray positions, long pastLength, NDArray attentionMask);

    /** The last hidden state {@code [b, s, hidden]} (before the final norm) for {@code ids [b, s]}. */
    NDArray hiddenStates(NDArray ids, AttentionContext context, KvCache cache);

    /** The final norm of {@code [..., hidden]}, what lm_head reads. */
    NDArray finalNorm(NDArray hidden);

    /**
     * Final norm and lm_head: {@code [b, s, hidden]} to logits {@code [b, s, vocab]}, in float32 whatever the compute
     * dtype (as transformers' {@code logits.float()}), so that callers read and score them alike.
     */
    NDArray finalNormAndHead(NDArray hidden);

    /** Logits {@code [b, s, vocab]} for {@code inputIds [b, s]} with an optional padding mask {@code [b, s]}. */
    NDArray forward(NDArray inputIds, NDArray attentionMask);

    /**
     * Logits for {@code inputIds [b, s]} following the tokens already in {@code cache} (null for none); the mask,
     * when given, covers cached and new tokens {@code [b, past + s]}.
     */
    NDArray forward(NDArray inputIds, NDArray attentionMask, KvCache cache);

    /** A new empty cache whose arrays live under {@code manager}. */
    KvCache newCache(NDManager manager);

    /** Bytes held by all weights (a tied lm_head counted once). */
    long bytes();

    /** Releases every weight. */
    @Override
    void close();
}
