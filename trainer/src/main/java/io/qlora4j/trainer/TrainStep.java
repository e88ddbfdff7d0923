package io.qlora4j.trainer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import io.qlora4j.data.Batch;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.WeightHold;
import io.qlora4j.model.decoder.AttentionContext;
import io.qlora4j.model.decoder.BlockCalls;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.DecoderBlock;
import io.qlora4j.quant.RecordedWeights;
import io.qlora4j.trainer.plan.ActivationModel;
import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Set;
import java.util.function.LongConsumer;

/**
 * The forward and backward passes of one optimizer step over its micro-batches, as ARCHITECTURE.md
 * draws them. With recompute (gradient checkpointing) the forward runs without a graph and keeps only
 * each block's input; the loss head then runs with a graph, and the blocks are recomputed from the
 * top, each inside the gradient collector, with the input gradient passed down as the next upstream
 * gradient. A selective recompute ({@link Builder#optKeptProducts}) also keeps the base products of the named
 * projections from the forward pass and recomputes only the rest of each block ({@link SelectiveRecompute}).
 * Without recompute the whole graph is kept and one backward call does it all. All give the same gradients:
 * dropout masks derive from a seed set before each micro-batch, so the recompute draws the masks of the forward
 * pass.
 *
 * <p>The loss is the causal-LM cross-entropy (logits at t predict the label at t + 1, label -100
 * ignored) summed over all micro-batches and divided by the labelled tokens of the whole group, so
 * accumulation gives the gradient of one large batch. Gradients accumulate into the trainable arrays
 * (anything with {@code setRequiresGradient(true)}); zeroing them is the caller's business. Every array
 * a micro-batch creates dies with it.
 *
 * <p>With recompute, a block whose base weights are dequantized (or widened) for every product does that twice:
 * in the forward pass and in its recompute (the backward reuses the recompute's copy, which autograd keeps; those
 * copies are decoded into memory that one block hands to the next, {@link RecordedWeights}). Within
 * {@link Builder#optHeldWeightBytes a memory budget}, the top blocks {@linkplain LinearLayer#hold hold} their
 * weights from their forward pass until their backward is done, so those blocks dequantize once per micro-batch.
 * The top blocks are the ones recomputed first, so they hold the longest-lived copies the shortest time. Held
 * weights are the same values, so the step's results are the same bits with any budget.
 *
 * <p>{@link Builder#optSkippedLayers Skipped layers} trade memory for the recompute itself: the top blocks run their
 * forward pass with a graph, kept until their backward, instead of running it twice (without a graph, then again with
 * one). The graph is the one the recompute would record, over the same values, and each skipped block's backward
 * still starts from its own output and ends at its own input, so the step's results are the same bits with any
 * number skipped; it is the full recompute without its most recent forward passes, as Megatron-LM's block-wise
 * recompute of only the bottom layers is.
 */
public final class TrainStep {
    private final CausalLM model;
    private final boolean recompute;
    private final SelectiveRecompute selective;
    private final boolean trainEmbeddings;
    private final LongConsumer dropoutSeeder;
    /** The first block whose forward pass keeps its graph, not recomputed ({@code numLayers} when none does). */
    private final int firstSkipped;
    /** The first block that holds its weights under recompute ({@code firstSkipped} when none does). */
    private final int firstHeld;
    /** Whether each micro-batch starts by handing glibc's free heap back (asked for, and the step recomputes). */
    private final boolean releaseHeap;

    private TrainStep(Builder builder) {
        this.model = builder.model;
        this.recompute = builder.recompute;
        this.selective = builder.kept.isEmpty() ? null : new SelectiveRecompute(builder.kept);
        this.trainEmbeddings = builder.trainEmbeddings;
        this.dropoutSeeder = builder.dropoutSeeder;
        int layers = model.numLayers();
        this.firstSkipped = layers - (builder.recompute ? Math.min(builder.skippedLayers, layers) : 0);
        this.firstHeld = firstSkipped - heldBlocks(model, firstSkipped, builder.heldWeightBytes);
        this.releaseHeap = builder.releaseHeap && builder.recompute;
    }

    /**
     * How many blocks below {@code top}, from the top down, hold their weights within {@code budget} bytes: those whose
     * held bytes in the compute dtype fit all together (none when a block has nothing to hold). Skipped layers hold
     * nothing: their graphs keep their weights anyway.
     */
    static int heldBlocks(CausalLM model, int top, long budget) {
        int held = 0;
        long used = 0;
        for (int l = top - 1; l >= 0; l--) {
            long bytes = blockHeldBytes(model.block(l), model.computeType());
            if (bytes == 0 || used + bytes > budget) {
                break;
            }
            used += bytes;
            held++;
        }
        return held;
    }

    /** Bytes a hold of every projection of {@code block} in {@code type} keeps. */
    static long blockHeldBytes(DecoderBlock block, DataType type) {
        long bytes = 0;
        for (String name : block.linearNames()) {
            bytes += block.linear(name).heldBytes(type);
        }
        return bytes;
    }

    /** Holds every projection of {@code block} in the compute dtype; closing the result releases them all. */
    private WeightHold hold(DecoderBlock block) {
        List<WeightHold> holds = new ArrayList<>();
        for (String name : block.linearNames()) {
            holds.add(block.linear(name).hold(model.computeType()));
        }
        return () -> holds.forEach(WeightHold::close);
    }

    /** A step over {@code model} with recompute on, the embeddings frozen and no dropout to seed. */
    public static Builder builder(CausalLM model) {
        return new Builder(model);
    }

    /**
     * Runs forward and backward over {@code microBatches}, accumulating gradients, and returns the
     * mean loss over their labelled tokens (0 when none carries a label, with no gradient added).
     * {@code dropoutSeed} fixes every dropout mask of the step (micro-batch i gets
     * {@code dropoutSeed * microBatches.size() + i}), so a resumed run draws the same ones.
     */
    public double accumulate(List<Batch> microBatches, long dropoutSeed) {
        return accumulate(microBatches, dropoutSeed, 1f);
    }

    /**
     * {@link #accumulate(List, long)} with every gradient multiplied by {@code lossScale} (float16 training's
     * loss scale: the caller divides the gradients by it again); the returned loss is not scaled.
     */
    public double accumulate(List<Batch> microBatches, long dropoutSeed, float lossScale) {
        return accumulate(microBatches, dropoutSeed, microBatches.size(), lossScale);
    }

    /**
     * {@link #accumulate(List, long, float)} with micro-batch i seeded {@code dropoutSeed * seedStride + i}: a step
     * that may hold fewer micro-batches than its run's others (an epoch's last) passes the run's accumulation, so
     * that no two steps draw the same masks.
     */
    public double accumulate(List<Batch> microBatches, long dropoutSeed, int seedStride, float lossScale) {
        if (microBatches.size() > seedStride) {
            throw new IllegalArgumentException(
                    microBatches.size() + " micro-batches over a seed stride of " + seedStride);
        }
        long labelled = 0;
        for (Batch batch : microBatches) {
            labelled += predictedTokens(batch);
        }
        if (labelled == 0) {
            return 0;
        }
        double loss = 0;
        for (int i = 0; i < microBatches.size(); i++) {
            dropoutSeeder.accept(dropoutSeed * seedStride + i);
            loss += microBatch(microBatches.get(i), labelled, lossScale);
        }
        return loss;
    }

    /** The labels that count after the shift: {@code labels[:, 1:] != -100}. */
    static long predictedTokens(Batch batch) {
        long n = 0;
        for (int r = 0; r < batch.rows(); r++) {
            for (int c = 1; c < batch.columns(); c++) {
                n += batch.labels()[r * batch.columns() + c] != LossHead.IGNORE_INDEX ? 1 : 0;
            }
        }
        return n;
    }

    private double microBatch(Batch batch, long labelled, float lossScale) {
        if (releaseHeap) {
            GlibcHeap.release();
        }
        NDManager root = model.manager();
        try (NDManager manager = root.newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            Shape shape = new Shape(batch.rows(), batch.columns());
            NDArray ids = manager.create(batch.inputIds(), shape);
            NDArray labels = manager.create(batch.labels(), shape);
            NDArray mask = manager.create(batch.attentionMask(), shape);
            // positions restart at 0 for each packed example; the mask keeps examples apart
            AttentionContext context = model.context(manager.create(batch.positionIds(), shape), 0, mask);
            LossHead head = new LossHead(model, labels, labelled, trainEmbeddings, lossScale, ActivationModel.CHUNK_LOGITS);
            return recompute ? checkpointed(ids, context, head) : wholeGraph(ids, context, head);
        }
    }

    /**
     * Forward without a graph keeping block inputs (the skipped layers with theirs); backward through the head, then
     * block by block. The blocks from {@link #firstHeld} up to the skipped ones hold their weights from their forward
     * pass to the end of their backward.
     */
    private double checkpointed(NDArray ids, AttentionContext context, LossHead head) {
        int layers = model.numLayers();
        WeightHold[] holds = new WeightHold[layers];
        try {
            return checkpointed(ids, context, head, holds);
        } finally {
            for (WeightHold hold : holds) {
                if (hold != null) {
                    hold.close();
                }
            }
        }
    }

    private double checkpointed(NDArray ids, AttentionContext context, LossHead head, WeightHold[] holds) {
        int layers = model.numLayers();
        NDArray[] inputs = new NDArray[layers + 1];
        // a skipped layer's input leaf, whose gradient its backward pass fills
        NDArray[] leaves = new NDArray[layers];
        KeptProducts[] products = new KeptProducts[layers];
        JniUtils.setGradMode(false);
        inputs[0] = model.embed(ids);
        for (int l = 0; l < layers; l++) {
            if (l >= firstHeld && l < firstSkipped) {
                holds[l] = hold(model.block(l));
            }
            // each block's intermediates die with it: only its output (and a selective recompute's products) is kept,
            // and a skipped layer's graph, which autograd holds
            try (NDScope block = new NDScope()) {
                if (l >= firstSkipped) {
                    leaves[l] = kept(leaf(inputs[l]));
                    inputs[l + 1] = forwardWithGraph(model.block(l), leaves[l], context);
                } else if (selective == null) {
                    inputs[l + 1] = model.block(l).forward(inputs[l], context, null, BlockCalls.GRAPH_FREE);
                } else {
                    products[l] = selective.room(model.block(l), ids.size(), inputs[l].getDataType(), ids.getManager());
                    inputs[l + 1] = model.block(l).forward(inputs[l], context, null, selective.recording(products[l]));
                }
                NDScope.unregister(inputs[l + 1]);
            }
        }
        try (GradientCollector collector = ids.getManager().getEngine().newGradientCollector()) {
            double value;
            NDArray upstream;
            try (NDScope lossHead = new NDScope()) {
                NDArray top = leaf(inputs[layers]);
                value = head.backward(top, collector);
                upstream = kept(top.getGradient());
            }
            try (RecordedWeights recorded = RecordedWeights.open()) {
                upstream = recomputeBlocks(context, holds, inputs, leaves, products, collector, upstream, recorded);
            }
            if (trainEmbeddings) {
                collector.backward(model.embed(ids).mul(upstream).sum());
            }
            return value;
        }
    }

    /** {@code block}'s forward pass over {@code input} recording its graph, as its recompute would. */
    private static NDArray forwardWithGraph(DecoderBlock block, NDArray input, AttentionContext context) {
        JniUtils.setGradMode(true);
        try {
            return block.forward(input, context, null);
        } finally {
            JniUtils.setGradMode(false);
        }
    }

    /**
     * Backpropagates {@code upstream} through the blocks from the top: through the skipped layers' graphs (their
     * outputs in {@code inputs}, their input leaves in {@code leaves}), then recomputing each other block, the weights
     * their graphs keep decoded into {@code recorded}'s slots (each block's graph is released by its backward before
     * the next block is recomputed); returns the gradient at the first block's input.
     */
    private NDArray recomputeBlocks(AttentionContext context, WeightHold[] holds, NDArray[] inputs, NDArray[] leaves,
            KeptProducts[] products, GradientCollector collector, NDArray upstream, RecordedWeights recorded) {
        for (int l = model.numLayers() - 1; l >= 0; l--) {
            recorded.nextBlock();
            // the recomputed block's graph and activations are freed before the next block is recomputed
            try (NDScope block = new NDScope()) {
                NDArray input;
                if (l >= firstSkipped) {
                    input = leaves[l];
                    NDScope.register(input);
                    collector.backward(inputs[l + 1].mul(upstream).sum());
                } else if (selective == null) {
                    input = leaf(inputs[l]);
                    NDArray out = model.block(l).forward(input, context, null);
                    collector.backward(out.mul(upstream).sum());
                } else {
                    input = leaf(inputs[l]);
                    try (SelectiveRecompute.Replay replay = selective.replay(products[l])) {
                        replay.backward(model.block(l).forward(input, context, null, replay), upstream);
                    }
                    products[l].close();
                }
                upstream.close();
                upstream = kept(input.getGradient());
            }
            if (holds[l] != null) {
                holds[l].close();
                holds[l] = null;
            }
            inputs[l + 1].close();
        }
        return upstream;
    }

    /** Forward and backward with the whole graph kept. */
    private double wholeGraph(NDArray ids, AttentionContext context, LossHead head) {
        try (GradientCollector collector = ids.getManager().getEngine().newGradientCollector()) {
            NDArray hidden = model.embed(ids);
            for (int l = 0; l < model.numLayers(); l++) {
                hidden = model.block(l).forward(hidden, context, null);
            }
            return head.backward(hidden, collector);
        }
    }

    /** {@code array}, taken out of the innermost NDScope so that it outlives it. */
    private static NDArray kept(NDArray array) {
        NDScope.unregister(array);
        return array;
    }

    /** A detached copy-free view of a saved hidden state that records a graph from here on. */
    private static NDArray leaf(NDArray saved) {
        NDArray view = saved.stopGradient();
        view.setRequiresGradient(true);
        return view;
    }

    /** Settings of a {@link TrainStep}. */
    public static final class Builder {
        private final CausalLM model;
        private boolean recompute = true;
        private Set<String> kept = Set.of();
        private boolean trainEmbeddings;
        private LongConsumer dropoutSeeder = seed -> { };
        private long heldWeightBytes;
        private boolean releaseHeap;
        private int skippedLayers;

        private Builder(CausalLM model) {
            this.model = model;
        }

        /** Recomputes each block in the backward pass (default) or keeps the whole graph ({@code false}). */
        public Builder optRecompute(boolean recompute) {
            this.recompute = recompute;
            return this;
        }

        /**
         * Keeps the base products of the projections called {@code names} ({@code mlp.down_proj}, ...: a block's
         * Hugging Face names) from the forward pass for the recompute (selective recompute; empty, the default,
         * recomputes every product). Needs recompute on and frozen bases: not with {@link #optTrainEmbeddings}.
         */
        public Builder optKeptProducts(Collection<String> names) {
            this.kept = Set.copyOf(names);
            return this;
        }

        /**
         * Also backpropagates into {@code embed_tokens} and lm_head (full fine-tuning; their arrays must require a
         * gradient).
         */
        public Builder optTrainEmbeddings(boolean trainEmbeddings) {
            this.trainEmbeddings = trainEmbeddings;
            return this;
        }

        /**
         * Receives a seed before each micro-batch; dropout layers must derive their masks from it alone, so
         * that the recompute draws the masks of the forward pass and a resumed run those of the first run.
         */
        public Builder optDropoutSeeder(LongConsumer dropoutSeeder) {
            this.dropoutSeeder = dropoutSeeder;
            return this;
        }

        /**
         * Bytes the top blocks may keep their dequantized (or widened) base weights in, from their forward pass to
         * their backward, so that they dequantize once per micro-batch instead of twice (default 0: none). Only
         * whole blocks count: as many from the top of the recomputed ones as fit. Applies with recompute only.
         */
        public Builder optHeldWeightBytes(long heldWeightBytes) {
            this.heldWeightBytes = heldWeightBytes;
            return this;
        }

        /**
         * Hands glibc's free heap pages back to the kernel before each micro-batch of a recomputing step (default
         * false): what the {@code balanced} allocator profile does (ProcessOverhead), so that the heap a step leaves
         * behind does not add to the next step's peak. The same bits either way. Without recompute it does nothing:
         * there the whole graph's heap would be faulted in again every step, for no lower peak (measured up to 2x
         * slower, the demo 2.8x).
         */
        public Builder optReleaseHeap(boolean releaseHeap) {
            this.releaseHeap = releaseHeap;
            return this;
        }

        /**
         * Keeps the graph of the top {@code layers} blocks' forward pass for their backward instead of recomputing
         * them (default 0: every block is recomputed; more than the model has: all of them): the same results bit for
         * bit, for those blocks' saved activations and weights held from the forward pass to their backward. Applies
         * with recompute only.
         */
        public Builder optSkippedLayers(int layers) {
            if (layers < 0) {
                throw new IllegalArgumentException("skipped layers must be >= 0, got " + layers);
            }
            this.skippedLayers = layers;
            return this;
        }

        /** Builds the step. */
        public TrainStep build() {
            if (!kept.isEmpty() && (!recompute || trainEmbeddings)) {
                throw new IllegalStateException("kept products need recompute on and a frozen base (LoRA), got recompute "
                        + recompute + (trainEmbeddings ? " with full fine-tuning" : ""));
            }
            return new TrainStep(this);
        }
    }
}
