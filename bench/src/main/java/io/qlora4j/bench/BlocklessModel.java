package io.qlora4j.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.TokenEmbedding;
import io.qlora4j.model.decoder.AttentionContext;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.DecoderBlock;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.KvCache;

/**
 * A view of a loaded model with no decoder blocks: embedding, final norm and lm_head are the model's own. A
 * training step over it runs exactly the step's parts outside the blocks (batch upload, context, embedding, loss
 * head with its backward), so {@link StepProfile} can time them with the real code and take the blocks' share as
 * the difference. Closing the view leaves the model open.
 */
final class BlocklessModel implements CausalLM {
    private final CausalLM model;

    BlocklessModel(CausalLM model) {
        this.model = model;
    }

    @Override
    public DecoderConfig config() {
        return model.config();
    }

    @Override
    public TokenEmbedding embedTokens() {
        return model.embedTokens();
    }

    @Override
    public NDManager manager() {
        return model.manager();
    }

    @Override
    public int numLayers() {
        return 0;
    }

    @Override
    public DecoderBlock block(int i) {
        throw new IndexOutOfBoundsException("a blockless view has no block " + i);
    }

    @Override
    public NDArray norm() {
        return model.norm();
    }

    @Override
    public LinearLayer lmHead() {
        return model.lmHead();
    }

    @Override
    public DataType computeType() {
        return model.computeType();
    }

    @Override
    public NDArray embed(NDArray ids) {
        return model.embed(ids);
    }

    @Override
    public AttentionContext context(NDManager manager, long seqLen, long pastLength, NDArray attentionMask) {
        return model.context(manager, seqLen, pastLength, attentionMask);
    }

    @Override
    public AttentionContext context(NDArray positions, long pastLength, NDArray attentionMask) {
        return model.context(positions, pastLength, attentionMask);
    }

    @Override
    public NDArray hiddenStates(NDArray ids, AttentionContext context, KvCache cache) {
        return embed(ids);
    }

    @Override
    public NDArray finalNorm(NDArray hidden) {
        return model.finalNorm(hidden);
    }

    @Override
    public NDArray finalNormAndHead(NDArray hidden) {
        return model.finalNormAndHead(hidden);
    }

    @Override
    public NDArray forward(NDArray inputIds, NDArray attentionMask) {
        throw new UnsupportedOperationException("a blockless view only trains");
    }

    @Override
    public NDArray forward(NDArray inputIds, NDArray attentionMask, KvCache cache) {
        throw new UnsupportedOperationException("a blockless view only trains");
    }

    @Override
    public KvCache newCache(NDManager manager) {
        throw new UnsupportedOperationException("a blockless view only trains");
    }

    @Override
    public long bytes() {
        return model.bytes();
    }

    /** Leaves the viewed model open. */
    @Override
    public void close() {
    }
}
