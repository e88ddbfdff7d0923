package io.qlora4j.trainer.plan;

import java.util.ArrayList;
import java.util.Comparator;
import java.util.HashSet;
import java.util.List;
import java.util.Set;

/**
 * The memory of one training step's activations, from the model's shape alone: the arrays {@code TrainStep}, the
 * decoder block, {@code LoraLinear} and {@code LossHead} keep alive for a micro-batch of {@code batch x seq} tokens,
 * counted array by array so that each can be told apart by size (a CPU allocator serves small and large blocks
 * differently: {@link Bytes}). The planner adds the result to the resident parts; a change to what the step keeps
 * (selective recompute) adds a {@link Recompute} policy here and the planner follows.
 *
 * <p>What it counts, per policy:
 * <ul>
 *   <li>{@link Recompute#BLOCK} (gradient checkpointing): the forward pass runs without a graph and keeps one hidden
 *       state per block boundary ({@code layers + 1} of {@code [tokens, hidden]}); then the loss head; then each block
 *       again with a graph, one at a time, holding its saved tensors, its forward intermediates until the block's
 *       forward returns, the dequantized weights of its projections (autograd keeps them for the input gradient) and
 *       the gradients of its backward pass. The peak is the largest of the three phases.</li>
 *   <li>{@link Recompute#SELECTIVE}: as {@code BLOCK}, and the forward pass also keeps the base products of the
 *       chosen projections of every block ({@code [tokens, out]} each, in one flat array per block freed as the block
 *       is recomputed), so they
 *       add to every phase; a recomputed block's graph no longer holds those projections' dequantized weights (their
 *       input gradients dequantize one weight at a time), and holds the gradients at its cuts (one {@code [tokens,
 *       in]} per kept projection's input and one {@code [tokens, out]} per kept product) until its backward pass
 *       ends.</li>
 *   <li>{@link Recompute#NONE}: every block's saved tensors and dequantized weights at once until the one backward
 *       pass, plus the last block's intermediates or the loss head.</li>
 * </ul>
 * Under either recompute, the top {@linkplain RecomputePolicy#skippedLayers skipped layers} keep their graphs (saved
 * tensors and every projection's dequantized weights, as without recompute) from their forward pass to their backward,
 * so those graphs add to the loss head's phase, to the last one's forward intermediates and to the top one's backward
 * gradients; they keep no base products.
 * Block arrays, from {@code TransformerBlock.forward} as a Llama block runs it: per RMSNorm the square (transient),
 * quotient and output (saved),
 * float32 inside; the residual sum (saved); per projection its LoRA product {@code [tokens, r]} float32 (saved) and,
 * with dropout, the float32 mask and masked input (or, in float16, the widened input); the query's and key's outputs
 * and four rotary-embedding arrays each (transients, the key's result saved); the scaled query and the attention
 * output copy (saved) and the value (saved); scores, masked float32 scores (transients) and probabilities (saved,
 * float32) of {@code [b, heads, s, s]}; the five {@code [tokens, intermediate]} MLP arrays (saved); o_proj's and
 * down_proj's outputs (transients). The loss head holds {@code chunk} tokens' logits, log-probabilities and their
 * exponent, which becomes the logits' gradient in place (float32, {@code chunk = CHUNK_LOGITS / vocab}), the normed
 * hidden state, and lm_head's float32 row chunks: all of them, widened once, when the tokens take several chunks
 * and number at least the hidden size ({@link #holdsHead}), else the one a product widens.
 * The step also keeps its attention masks ({@code [batch, 1, seq, seq]} float32) beside the hidden states.
 *
 * <p>Other families differ from that block by the parts their config declares ({@link ModelShape.BlockParts}), each
 * counted here the same way for every family: more norms and the outputs they keep (Gemma 2), per-head q/k norms
 * (Qwen3), a fused q/k/v or gate/up output in place of separate ones (Phi-3), the gate activation's own arrays
 * (Gemma's GELU), soft-capped scores and logits (Gemma 2: three more chunk arrays forward, four for the cap's
 * derivative), a second mask for mixed sliding and full layers.
 */
public final class ActivationModel {
    /** What the backward pass recomputes. */
    public enum Recompute {
        /** Nothing: the whole graph is kept ({@code gradient_checkpointing: false}). */
        NONE,
        /** Every decoder block, one at a time, from its saved input ({@code gradient_checkpointing: true}). */
        BLOCK,
        /**
         * Every decoder block but the base products of the kept projections, which the forward pass keeps
         * ({@code gradient_checkpointing_mode: selective}).
         */
        SELECTIVE
    }

    /**
     * Logits the training step's loss head computes at once (the head and this plan share it): 16 MB per float32
     * chunk array (logits, log-probabilities, their exponent), so that the head's temporaries stay small whatever the
     * batch. On the ~100M step (1,020 tokens x 32,000) this lowered the peak RSS by 95 to 129 MB under every recompute
     * policy against chunks of 16M logits, with the same gradient bits and the step's time unchanged within the
     * noise (docs/BENCHMARKS.md). At 2M logits (8 MB arrays, under glibc's mmap threshold) glibc's heap kept the
     * freed chunks: the selective step peaked 136 MB higher than at 4M.
     */
    public static final long CHUNK_LOGITS = 1L << 22;
    /** Elements of lm_head widened to float32 at once ({@code Float16Weight}'s row chunks). */
    static final long HEAD_ROW_CHUNK = 1L << 22;
    private static final long F32 = 4;

    private final ModelShape shape;
    private final long e;
    private final long rank;
    private final boolean dropout;
    private final long threshold;

    /**
     * The model of {@code shape} computing in {@code computeBytes} per element (4: float32, 2: float16), with LoRA of
     * {@code rank} on every projection ({@code rank} 0: none) and dropout on its input when {@code dropout}; arrays
     * of {@code smallBelow} bytes or fewer count as {@link Bytes#small}.
     */
    public ActivationModel(ModelShape shape, int computeBytes, int rank, boolean dropout, long smallBelow) {
        this.shape = shape;
        this.e = computeBytes;
        this.rank = rank;
        this.dropout = dropout;
        this.threshold = smallBelow;
    }

    /**
     * Bytes of live arrays, split by array size.
     *
     * @param small bytes in arrays below the size threshold (on a CPU, what glibc serves from its heap)
     * @param large bytes in arrays at or above it (on a CPU, separate mappings returned when freed)
     */
    public record Bytes(long small, long large) {
        static final Bytes ZERO = new Bytes(0, 0);

        /** Both together. */
        public long total() {
            return Exact.sum(small, large);
        }

        Bytes plus(Bytes o) {
            return new Bytes(Exact.sum(small, o.small), Exact.sum(large, o.large));
        }

        Bytes times(long n) {
            return new Bytes(Exact.product(small, n), Exact.product(large, n));
        }

        /** The larger of the two by {@link #total}. */
        static Bytes max(Bytes a, Bytes b) {
            return a.total() >= b.total() ? a : b;
        }

        /** The larger small part and the larger large part of the two, each on its own. */
        static Bytes highWater(Bytes a, Bytes b) {
            return new Bytes(Math.max(a.small, b.small), Math.max(a.large, b.large));
        }
    }

    /** {@code count} arrays of {@code bytes} each. */
    private Bytes arrays(long count, long bytes) {
        long all = Exact.product(count, bytes);
        return bytes < threshold ? new Bytes(all, 0) : new Bytes(0, all);
    }

    /**
     * The projections whose base products a selective recompute keeps within {@code budgetBytes} (null: all) for a
     * micro-batch of {@code batch x seq} tokens: the most FLOP saved per byte first, which is the widest input (a kept
     * product of {@code [tokens, out]} saves {@code 2 x in} FLOP per element), in block order among equals; each one
     * that still fits in what is left is taken, on every layer alike.
     */
    public List<String> keptWithin(Long budgetBytes, long batch, long seq) {
        List<ModelShape.Linear> order = new ArrayList<>(shape.linears());
        order.sort(Comparator.comparingLong(ModelShape.Linear::in).reversed());
        long left = budgetBytes == null ? Long.MAX_VALUE : budgetBytes;
        Set<String> kept = new HashSet<>();
        for (ModelShape.Linear l : order) {
            long bytes = keptBytes(List.of(l.name()), batch, seq);
            if (bytes <= left) {
                kept.add(l.name());
                left -= bytes;
            }
        }
        return shape.linears().stream().map(ModelShape.Linear::name).filter(kept::contains).toList();
    }

    /** Bytes of the base products of the projections {@code kept} over all layers, for {@code batch x seq} tokens. */
    public long keptBytes(List<String> kept, long batch, long seq) {
        return keptProducts(kept, Exact.product(batch, seq)).times(shape.layers()).total();
    }

    /** One layer's kept base products: one flat array ({@code KeptProducts}). */
    private Bytes keptProducts(List<String> kept, long tokens) {
        long bytes = 0;
        for (ModelShape.Linear l : shape.linears()) {
            if (kept.contains(l.name())) {
                bytes = Exact.sum(bytes, Exact.product(tokens, l.out(), e));
            }
        }
        return bytes == 0 ? Bytes.ZERO : arrays(1, bytes);
    }

    /**
     * The activations of one micro-batch of {@code batch} rows of {@code seq} tokens under {@code policy}, which is
     * not {@link Recompute#SELECTIVE} (that one needs its kept projections).
     *
     * @throws ArithmeticException when a figure exceeds 2^63 bytes
     */
    public Activations of(Recompute policy, long batch, long seq) {
        if (policy == Recompute.SELECTIVE) {
            throw new IllegalArgumentException("a selective recompute needs its kept projections");
        }
        return of(new RecomputePolicy(policy, List.of(), 0), batch, seq);
    }

    /**
     * The activations of one micro-batch of {@code batch} rows of {@code seq} tokens under {@code recompute}: its
     * policy, its kept products (a selective recompute) and its skipped layers.
     *
     * @throws ArithmeticException when a figure exceeds 2^63 bytes
     */
    public Activations of(RecomputePolicy recompute, long batch, long seq) {
        Recompute policy = recompute.mode();
        List<String> kept = recompute.kept();
        long t = Exact.product(batch, seq);
        long h = shape.hidden();
        long q = shape.queryDim();
        long kv = shape.keyValueDim();
        long inter = shape.intermediate();
        long scores = Exact.product(batch, shape.heads(), seq, seq);
        ModelShape.BlockParts parts = shape.block();
        long norms = parts.norms();
        // what autograd keeps after the block's forward pass
        Bytes saved = (e == F32 ? arrays(2 * norms, Exact.product(t, h, F32))
                : arrays(2 * norms, Exact.product(t, h, F32)).plus(arrays(2 * norms, Exact.product(t, h, e))))
                .plus(arrays(parts.normedOutputs() ? 3 : 1, Exact.product(t, h, e)))
                .plus(arrays(2, Exact.product(t, q, e))).plus(arrays(parts.fusedQkv() ? 1 : 2, Exact.product(t, kv, e)))
                .plus(parts.fusedQkv() ? arrays(1, Exact.product(t, Exact.sum(q, 2 * kv), e)) : Bytes.ZERO)
                .plus(parts.fusedGateUp() ? arrays(1, Exact.product(t, 2 * inter, e)) : arrays(2, Exact.product(t, inter, e)))
                .plus(arrays(parts.activationSaved() + 1L, Exact.product(t, inter, e)))
                .plus(arrays(1, Exact.product(scores, F32))).plus(e == F32 ? Bytes.ZERO : arrays(1, Exact.product(scores, e)))
                .plus(arrays(parts.scoreSoftcap() ? 1 : 0, Exact.product(scores, e)));
        if (parts.qkNorm()) {
            saved = saved.plus(arrays(2, Exact.product(t, q, F32))).plus(arrays(2, Exact.product(t, kv, F32)));
        }
        for (ModelShape.Linear l : shape.linears()) {
            if (rank > 0) {
                saved = saved.plus(arrays(1, Exact.product(t, rank, F32)));
                long inputs = dropout ? 2 : e == F32 ? 0 : 1;
                saved = saved.plus(arrays(inputs, Exact.product(t, l.in(), F32)));
            }
        }
        // what lives only until the block's forward pass returns
        long projected = parts.fusedQkv() ? 1 : 0; // q's and k's outputs are slices of the kept fused one
        Bytes transients = arrays(norms, Exact.product(t, h, F32)).plus(arrays(parts.normedOutputs() ? 0 : 2,
                Exact.product(t, h, e)))
                .plus(arrays(6 - projected, Exact.product(t, q, e))).plus(arrays(1, Exact.product(t, q / 2, e)))
                .plus(arrays(4 - projected, Exact.product(t, kv, e))).plus(arrays(1, Exact.product(t, kv / 2, e)))
                .plus(arrays(parts.activationTransient(), Exact.product(t, inter, e)))
                .plus(arrays(parts.scoreSoftcap() ? 3 : 1, Exact.product(scores, e)))
                .plus(arrays(1, Exact.product(scores, F32)));
        if (parts.qkNorm()) {
            transients = transients.plus(arrays(1, Exact.product(t, q, F32))).plus(arrays(1, Exact.product(t, kv, F32)));
        }
        boolean selective = policy == Recompute.SELECTIVE;
        Bytes weights = Bytes.ZERO;
        Bytes allWeights = Bytes.ZERO;
        Bytes cutGradients = Bytes.ZERO;
        long largest = 0;
        for (ModelShape.Linear l : shape.linears()) {
            Bytes weight = arrays(1, Exact.product(l.out(), l.in(), e));
            allWeights = allWeights.plus(weight);
            if (selective && kept.contains(l.name())) {
                cutGradients = cutGradients.plus(arrays(1, Exact.product(t, l.in(), e)))
                        .plus(arrays(1, Exact.product(t, l.out(), e)));
            } else {
                weights = weights.plus(weight);
            }
            largest = Math.max(largest, Exact.product(l.out(), l.in()));
        }
        Bytes dequantizing = arrays(1, Exact.product(largest, F32));
        // the MLP's backward pass: gradients of the intermediate arrays and of the hidden state
        Bytes backward = arrays(4, Exact.product(t, inter, e)).plus(arrays(2, Exact.product(t, h, e)));
        Bytes head = lossHead(batch, seq);
        Bytes masks = arrays(parts.masks(), Exact.product(batch, seq, seq, F32));
        Bytes last = transients.plus(dequantizing);
        if (policy == Recompute.NONE) {
            Bytes hidden = arrays(1, Exact.product(t, h, e)).plus(masks);
            Bytes graph = saved.plus(weights).times(shape.layers());
            Bytes peak = hidden.plus(graph).plus(Bytes.max(last, head));
            return new Activations(policy, hidden, graph, Bytes.ZERO, head, peak,
                    hidden.plus(graph).plus(Bytes.highWater(last, head)));
        }
        long skipped = Math.min(recompute.skippedLayers(), shape.layers());
        Bytes boundaries = arrays(shape.layers() + 1L, Exact.product(t, h, e)).plus(masks);
        if (selective) {
            boundaries = boundaries.plus(keptProducts(kept, t).times(shape.layers() - skipped));
        }
        Bytes graphs = saved.plus(allWeights).times(skipped);
        // the kept products' input gradients dequantize their weights one at a time
        Bytes cuts = cutGradients.total() == 0 ? Bytes.ZERO : cutGradients.plus(dequantizing);
        Bytes block = weights.plus(Bytes.max(saved.plus(transients).plus(dequantizing), saved.plus(backward).plus(cuts)));
        Bytes forward = transients.plus(saved).plus(dequantizing);
        // with the skipped layers' graphs: the head, the last one's forward intermediates, the top one's backward
        Bytes top = skipped == 0 ? Bytes.ZERO : graphs.plus(Bytes.max(head, Bytes.max(last, backward)));
        Bytes topHighWater = skipped == 0 ? Bytes.ZERO
                : graphs.plus(Bytes.highWater(head, Bytes.highWater(last, backward)));
        Bytes peak = boundaries.plus(Bytes.max(top, Bytes.max(block, Bytes.max(head, forward))));
        return new Activations(policy, boundaries, graphs, block, head, peak, boundaries.plus(
                Bytes.highWater(topHighWater, Bytes.highWater(block, Bytes.highWater(head, forward)))));
    }

    /** Tokens per loss-head chunk for a vocabulary of {@code vocab}: at least one. */
    static long chunkTokens(long vocab) {
        return chunkTokens(CHUNK_LOGITS, vocab);
    }

    /**
     * Tokens per loss-head chunk of {@code chunkLogits} logits for a vocabulary of {@code vocab}: at least one. What
     * the loss head runs and the plan counts.
     */
    public static long chunkTokens(long chunkLogits, long vocab) {
        return Math.max(1, chunkLogits / vocab);
    }

    /**
     * Whether the loss head widens lm_head once for the micro-batch rather than per product: when its {@code tokens}
     * take more than one chunk of {@code chunk} and are at least the head's {@code hidden} input features, so that
     * the float32 copy ({@code vocab x hidden}) is no larger than the micro-batch's whole logits
     * ({@code tokens x vocab}, what transformers holds).
     */
    public static boolean holdsHead(long tokens, long chunk, long hidden) {
        return tokens > chunk && tokens >= hidden;
    }

    /**
     * The loss head's arrays at its largest: three chunk-sized float32 units, lm_head's row chunks (all of them when
     * held, else one being widened), the normed state.
     */
    private Bytes lossHead(long batch, long seq) {
        long tokens = Exact.product(batch, Math.max(0, seq - 1));
        long vocab = shape.vocab();
        long chunk = Math.min(tokens, chunkTokens(vocab));
        long logits = Exact.product(chunk, vocab, F32);
        long rowsPerChunk = Math.max(1, HEAD_ROW_CHUNK / shape.hidden());
        long rowChunk = Exact.product(rowsPerChunk, shape.hidden(), F32);
        Bytes head = holdsHead(tokens, chunk, shape.hidden())
                ? arrays((vocab + rowsPerChunk - 1) / rowsPerChunk, rowChunk)
                : arrays(3, rowChunk);
        return arrays(shape.block().logitSoftcap() ? 10 : 3, logits).plus(head)
                .plus(arrays(3, Exact.product(tokens, shape.hidden(), F32)));
    }

    /**
     * One micro-batch's activation memory.
     *
     * @param policy what the backward pass recomputes
     * @param hiddenStates the hidden states kept across the whole step (block boundaries under recompute, with a
     *     selective recompute's kept products, the embedding output without)
     * @param graph the saved tensors and dequantized weights kept from the forward pass for one backward pass: every
     *     block's without recompute, the skipped layers' with it
     * @param block one recomputed block at its largest: its dequantized weights, saved tensors and the larger of its
     *     forward intermediates and its backward gradients (recompute)
     * @param lossHead the loss head's chunk at its largest
     * @param peak the step's peak: the hidden states plus the largest phase
     * @param highWater the hidden states plus, for small and large arrays each, their largest phase: what a
     *     process keeps when its allocator holds on to freed small blocks (a CPU's glibc heap) but returns large ones
     */
    public record Activations(Recompute policy, Bytes hiddenStates, Bytes graph, Bytes block, Bytes lossHead,
            Bytes peak, Bytes highWater) {}
}
