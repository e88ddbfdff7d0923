package io.qlora4j.model.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.GraphCasts;
import io.qlora4j.model.TokenEmbedding;
import java.util.List;

/**
 * A Llama-family causal language model on DJL NDArrays: the embedding, the decoder blocks, the final
 * norm and lm_head, plus the forward pass with transformers' semantics. The model owns its arrays (created
 * by the caller in the manager and on the device of its choice); every forward call keeps its temporaries
 * in a scope, so memory stays flat across calls.
 *
 * <p>The trainer drives the pieces one by one: {@link #embed}, {@link #context}, {@link #block}(i)
 * {@code .forward}, {@link #finalNormAndHead}; {@code finalNormAndHead(hiddenStates(ids, context, cache))}
 * runs a whole call under a context of one's own (explicit positions, packing masks).
 */
public final class LlamaModel implements AutoCloseable {
    private final LlamaConfig config;
    private final TokenEmbedding embedTokens;
    private final List<LlamaBlock> layers;
    private final NDArray norm;
    private final LinearLayer lmHead;
    private final boolean tied;
    private final DataType computeType;
    private final RotaryEmbedding rope;

    /**
     * Assembles a model from {@code embed_tokens [vocab, hidden]}, the blocks in order, {@code norm [hidden]}
     * and lm_head; pass a null lm_head for tied embeddings (it then reads the embedding table itself).
     */
    public LlamaModel(LlamaConfig config, TokenEmbedding embedTokens, List<LlamaBlock> layers, NDArray norm,
            LinearLayer lmHead) {
        this(config, embedTokens, layers, norm, lmHead, DataType.FLOAT32);
    }

    /**
     * As {@link #LlamaModel(LlamaConfig, TokenEmbedding, List, NDArray, LinearLayer)}, computing in
     * {@code computeType} (float32, or float16 on a GPU): the embedded tokens are cast to it, and every layer
     * computes in its input's dtype (norms and softmax in float32 inside).
     */
    public LlamaModel(LlamaConfig config, TokenEmbedding embedTokens, List<LlamaBlock> layers, NDArray norm,
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

    /** The architecture. */
    public LlamaConfig config() {
        return config;
    }

    /** {@code embed_tokens [vocab, hidden]}. */
    public TokenEmbedding embedTokens() {
        return embedTokens;
    }

    /** The manager that holds the weights: per-call managers are made under it. */
    public NDManager manager() {
        return norm.getManager();
    }

    /** The number of decoder blocks. */
    public int numLayers() {
        return layers.size();
    }

    /** Decoder block {@code i}. */
    public LlamaBlock block(int i) {
        return layers.get(i);
    }

    /** The final norm weight {@code [hidden]}. */
    public NDArray norm() {
        return norm;
    }

    /** The output projection (reading the embedding array when tied). */
    public LinearLayer lmHead() {
        return lmHead;
    }

    /** The rotary embedding, for callers that build their own {@link AttentionContext} (packing). */
    public RotaryEmbedding rope() {
        return rope;
    }

    /** The dtype the blocks compute in. */
    public DataType computeType() {
        return computeType;
    }

    /** Looks up {@code ids [b, s]} (integers) and returns {@code [b, s, hidden]} in the compute dtype, in ids' manager. */
    public NDArray embed(NDArray ids) {
        NDArray rows = embedTokens.lookup(ids);
        NDArray hidden = GraphCasts.to(rows, computeType);
        if (hidden != rows) {
            rows.close();
        }
        return hidden;
    }

    /**
     * The context for {@code seqLen} new tokens after {@code pastLength} cached ones, at positions
     * {@code pastLength .. pastLength + seqLen - 1}; {@code attentionMask} is null or {@code [b, past + s]}
     * (1 real, 0 padding).
     */
    public AttentionContext context(NDManager manager, long seqLen, long pastLength, NDArray attentionMask) {
        NDArray positions = manager.arange((float) pastLength, (float) (pastLength + seqLen), 1f, DataType.FLOAT32)
                .reshape(1, seqLen);
        try {
            return context(positions, pastLength, attentionMask);
        } finally {
            positions.close();
        }
    }

    /**
     * The context for explicit {@code positions [b or 1, s]} (e.g. counted from the first real token of a
     * left-padded row); the causal mask still follows token order.
     */
    public AttentionContext context(NDArray positions, long pastLength, NDArray attentionMask) {
        NDList cosSin = rope.cosSin(positions);
        NDArray mask = CausalMask.build(positions.getManager(), positions.getShape().get(1), pastLength,
                attentionMask, config.slidingWindow());
        return new AttentionContext(cosSin.get(0), cosSin.get(1), mask);
    }

    /** The last hidden state {@code [b, s, hidden]} (before the final norm) for {@code ids [b, s]}. */
    public NDArray hiddenStates(NDArray ids, AttentionContext context, KvCache cache) {
        NDArray hidden = embed(ids);
        for (LlamaBlock block : layers) {
            NDArray next = block.forward(hidden, context, cache);
            hidden.close();
            hidden = next;
        }
        if (cache != null) {
            cache.advance(Math.toIntExact(ids.getShape().get(1)));
        }
        return hidden;
    }

    /** The final RMSNorm of {@code [..., hidden]}, what lm_head reads. */
    public NDArray finalNorm(NDArray hidden) {
        return RmsNorm.apply(hidden, norm, config.rmsNormEps());
    }

    /**
     * Final RMSNorm and lm_head: {@code [b, s, hidden]} to logits {@code [b, s, vocab]}, in float32 whatever the
     * compute dtype (as transformers' {@code logits.float()}), so that callers read and score them alike.
     */
    public NDArray finalNormAndHead(NDArray hidden) {
        return Scoped.run(() -> GraphCasts.to(lmHead.forward(finalNorm(hidden)), DataType.FLOAT32));
    }

    /** Logits {@code [b, s, vocab]} for {@code inputIds [b, s]} with an optional padding mask {@code [b, s]}. */
    public NDArray forward(NDArray inputIds, NDArray attentionMask) {
        return forward(inputIds, attentionMask, null);
    }

    /**
     * Logits for {@code inputIds [b, s]} following the tokens already in {@code cache} (null for none);
     * the mask, when given, covers cached and new tokens {@code [b, past + s]}.
     */
    public NDArray forward(NDArray inputIds, NDArray attentionMask, KvCache cache) {
        long past = cache == null ? 0 : cache.length();
        return Scoped.run(() -> {
            AttentionContext context = context(inputIds.getManager(), inputIds.getShape().get(1), past, attentionMask);
            return finalNormAndHead(hiddenStates(inputIds, context, cache));
        });
    }

    /** A new empty cache whose arrays live under {@code manager}. */
    public KvCache newCache(NDManager manager) {
        return new KvCache(manager, layers.size());
    }

    /** Bytes held by all weights (the tied lm_head counted once). */
    public long bytes() {
        long total = embedTokens.bytes() + norm.size() * norm.getDataType().getNumOfBytes();
        for (LlamaBlock block : layers) {
            total += block.bytes();
        }
        return tied ? total : total + lmHead.bytes();
    }

    /** Releases every weight. */
    @Override
    public void close() {
        embedTokens.close();
        layers.forEach(LlamaBlock::close);
        norm.close();
        if (!tied) {
            lmHead.close();
        }
    }
}
