package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.GraphCasts;
import io.qlora4j.model.GraphScalars;
import io.qlora4j.model.TokenEmbedding;
import java.util.List;

/**
 * The generic decoder-only causal LM every family is built as: the embedding, the {@link DecoderBlock}s, the
 * final norm and lm_head, with the parts the config names. The model owns its arrays (created by the caller in
 * the manager and on the device of its choice); every forward call keeps its temporaries in a scope, so memory
 * stays flat across calls.
 */
public final class TransformerLM implements CausalLM {
    private final DecoderConfig config;
    private final TokenEmbedding embedTokens;
    private final List<DecoderBlock> layers;
    private final NDArray norm;
    private final LinearLayer lmHead;
    private final boolean tied;
    private final DataType computeType;
    private final RotaryEmbedding rope;

    /**
     * Assembles a model from {@code embed_tokens [vocab, hidden]}, the blocks in order, {@code norm [hidden]}
     * and lm_head; pass a null lm_head for tied embeddings (it then reads the embedding table itself).
     */
    public TransformerLM(DecoderConfig config, TokenEmbedding embedTokens, List<? extends DecoderBlock> layers, NDArray norm,
            LinearLayer lmHead) {
        this(config, embedTokens, layers, norm, lmHead, DataType.FLOAT32);
    }

    /**
     * As {@link #TransformerLM(DecoderConfig, TokenEmbedding, List, NDArray, LinearLayer)}, computing in
     * {@code computeType} (float32, or float16 on a GPU): the embedded tokens are cast to it, and every layer
     * computes in its input's dtype (norms and softmax in float32 inside).
     */
    public TransformerLM(DecoderConfig config, TokenEmbedding embedTokens, List<? extends DecoderBlock> layers, NDArray norm,
            LinearLayer lmHead, DataType computeType) {
        if (computeType != DataType.FLOAT32 && computeType != DataType.FLOAT16) {
            throw new IllegalArgumentException("compute dtype must be float32 or float16, not " + computeType);
        }
        Shape embed = new Shape(config.vocabSize(), config.hiddenSize());
        if (!embedTokens.shape().equals(embed)) {
            throw new IllegalArgumentException("embed_tokens must be " + embed + ", got " + embedTokens.shape());
        }
        if (!norm.getShape().equals(new Shape(config.hiddenSize()))) {
            throw new IllegalArgumentException("norm must be (" + config.hiddenSize() + "), got " + norm.getShape());
        }
        if (layers.size() != config.numHiddenLayers()) {
            throw new IllegalArgumentException(
                    "expected " + config.numHiddenLayers() + " layers, got " + layers.size());
        }
        for (int i = 0; i < layers.size(); i++) {
            if (layers.get(i).index() != i) {
                throw new IllegalArgumentException("layer " + i + " has index " + layers.get(i).index());
            }
        }
        if (lmHead == null && !config.tieWordEmbeddings()) {
            throw new IllegalArgumentException("lm_head is required unless tie_word_embeddings is set");
        }
        LinearLayer head = lmHead == null ? embedTokens.asLinear() : lmHead;
        if (head.inFeatures() != config.hiddenSize() || head.outFeatures() != config.vocabSize()) {
            throw new IllegalArgumentException("lm_head must map " + config.hiddenSize() + " -> "
                    + config.vocabSize() + ", got " + head.inFeatures() + " -> " + head.outFeatures());
        }
        this.config = config;
        this.embedTokens = embedTokens;
        this.layers = List.copyOf(layers);
        this.norm = norm;
        this.lmHead = head;
        this.tied = lmHead == null;
        this.computeType = computeType;
        this.rope = new RotaryEmbedding(config);
    }

    @Override
    public DecoderConfig config() {
        return config;
    }

    @Override
    public TokenEmbedding embedTokens() {
        return embedTokens;
    }

    @Override
    public NDManager manager() {
        return norm.getManager();
    }

    @Override
    public int numLayers() {
        return layers.size();
    }

    @Override
    public DecoderBlock block(int i) {
        return layers.get(i);
    }

    @Override
    public NDArray norm() {
        return norm;
    }

    @Override
    public LinearLayer lmHead() {
        return lmHead;
    }

    @Override
    public DataType computeType() {
        return computeType;
    }

    /**
     * {@inheritDoc} With a scaled embedding (Gemma) the rows are multiplied by {@code sqrt(hidden_size)} rounded to
     * the compute dtype, as transformers' {@code embed_scale.to(weight.dtype)} does for a model in that dtype.
     */
    @Override
    public NDArray embed(NDArray ids) {
        NDArray rows = embedTokens.lookup(ids);
        NDArray hidden = GraphCasts.to(rows, computeType);
        if (hidden != rows) {
            rows.close();
        }
        if (!config.parts().scaledEmbedding()) {
            return hidden;
        }
        NDArray scaled = GraphScalars.times(hidden, config.embeddingScale());
        hidden.close();
        return scaled;
    }

    @Override
    public AttentionContext context(NDManager manager, long seqLen, long pastLength, NDArray attentionMask) {
        NDArray positions = manager.arange((float) pastLength, (float) (pastLength + seqLen), 1f, DataType.FLOAT32)
                .reshape(1, seqLen);
        try {
            return context(positions, pastLength, attentionMask);
        } finally {
            positions.close();
        }
    }

    @Override
    public AttentionContext context(NDArray positions, long pastLength, NDArray attentionMask) {
        return AttentionContext.of(config, rope, positions, pastLength, attentionMask);
    }

    @Override
    public NDArray hiddenStates(NDArray ids, AttentionContext context, KvCache cache) {
        NDArray hidden = embed(ids);
        for (DecoderBlock block : layers) {
            NDArray next = block.forward(hidden, context, cache);
            hidden.close();
            hidden = next;
        }
        if (cache != null) {
            cache.advance(Math.toIntExact(ids.getShape().get(1)));
        }
        return hidden;
    }

    @Override
    public NDArray finalNorm(NDArray hidden) {
        return config.parts().norm().apply(hidden, norm, config.rmsNormEps());
    }

    /** {@inheritDoc} A final soft-cap (Gemma 2) applies to the float32 logits. */
    @Override
    public NDArray finalNormAndHead(NDArray hidden) {
        Double softcap = config.parts().finalLogitSoftcapping();
        return Scoped.run(() -> {
            NDArray logits = GraphCasts.to(lmHead.forward(finalNorm(hidden)), DataType.FLOAT32);
            return softcap == null ? logits : SoftCap.apply(logits, softcap);
        });
    }

    @Override
    public NDArray forward(NDArray inputIds, NDArray attentionMask) {
        return forward(inputIds, attentionMask, null);
    }

    @Override
    public NDArray forward(NDArray inputIds, NDArray attentionMask, KvCache cache) {
        long past = cache == null ? 0 : cache.length();
        return Scoped.run(() -> {
            AttentionContext context = context(inputIds.getManager(), inputIds.getShape().get(1), past, attentionMask);
            return finalNormAndHead(hiddenStates(inputIds, context, cache));
        });
    }

    @Override
    public KvCache newCache(NDManager manager) {
        return new KvCache(manager, layers.size());
    }

    @Override
    public long bytes() {
        long total = embedTokens.bytes() + norm.size() * norm.getDataType().getNumOfBytes();
        for (DecoderBlock block : layers) {
            total += block.bytes();
        }
        return tied ? total : total + lmHead.bytes();
    }

    @Override
    public void close() {
        embedTokens.close();
        layers.forEach(DecoderBlock::close);
        norm.close();
        if (!tied) {
            lmHead.close();
        }
    }
}
