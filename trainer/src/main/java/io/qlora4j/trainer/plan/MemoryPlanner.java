package io.qlora4j.trainer.plan;

import io.qlora4j.adapters.AdapterVariant;
import io.qlora4j.adapters.AdapterVariants;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.optim.DeviceBudget;
import io.qlora4j.optim.Optim;
import io.qlora4j.trainer.plan.ActivationModel.Activations;
import io.qlora4j.trainer.plan.ActivationModel.Recompute;
import io.qlora4j.trainer.plan.MemoryPlan.Part;
import io.qlora4j.trainer.plan.MemoryPlan.Place;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Optional;

/**
 * Plans the memory of a training run as configured, from the model's shape alone (no weights are read): the base
 * projections in their {@link BaseFormat} (its {@link BaseFormat#deviceBytes}, so every registered format is counted
 * by its own rule), the embedding table and lm_head in 16 bits ({@code Float16Weight}) or float32, the norms, the
 * adapters' float32 weights and gradients (variant extras included), the optimizer state by {@link Optim} (8-bit
 * blocks or float32) split between the device, up to the paged budget, and host memory, the activations of one
 * micro-batch ({@link ActivationModel}) and the process's own overhead ({@link ProcessOverhead}, measured per machine
 * kind). Immutable; {@link #toBuilder} varies one setting for the advice a plan that does not fit gets.
 */
public final class MemoryPlanner {
    /** Machine kinds: compute on the CPU, or on one CUDA device. */
    public enum Device {
        /** The CPU: one memory, every part in the process's RSS. */
        CPU,
        /** One CUDA GPU: device memory beside host memory. */
        CUDA;

        /** The lower-case name ({@code cpu}, {@code cuda}). */
        public String key() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    private final Builder b;

    private MemoryPlanner(Builder builder) {
        this.b = builder.copy();
    }

    /** A planner for {@code shape} with the defaults of a job file (QLoRA NF4+DQ, r 8 on all, batch 1 x 2048). */
    public static Builder builder(ModelShape shape) {
        return new Builder(shape);
    }

    /** A builder holding this planner's settings, to change one. */
    public Builder toBuilder() {
        return b.copy();
    }

    /** The settings' base format. */
    public BaseFormat format() {
        return b.format;
    }

    /** The settings' rows per micro-batch. */
    public long batch() {
        return b.batch;
    }

    /** The settings' tokens per row. */
    public long seq() {
        return b.seq;
    }

    /** The plan. @throws ArithmeticException when a figure exceeds 2^63 bytes */
    public MemoryPlan plan() {
        ModelShape s = b.shape;
        int e = b.computeBytes;
        List<Part> parts = new ArrayList<>();
        long base = 0;
        long frozenDense = 0;
        for (ModelShape.Linear l : s.linears()) {
            base = Exact.sum(base, b.full ? Exact.product(l.out(), l.in(), 4) : b.format.deviceBytes(l.shape()));
        }
        base = Exact.product(base, s.layers());
        // on the device, a format's lookup tables and other per-tensor state count too (the stored bits are inspect's)
        parts.add(new Part("base_weights", base, Place.DEVICE, String.format(Locale.ROOT,
                "%d blocks of projections in %s (%.3f bits per parameter on the device)", s.layers(),
                b.full ? "float32 (trained)" : b.format.describe(),
                8.0 * base / Math.max(1, Exact.product(s.blockLinearParameters(), s.layers())))));
        long tables = s.tiedEmbeddings() ? 1 : 2;
        long tableBytes = !b.full && s.sixteenBitTables() ? Exact.product(tables, s.vocab(), Exact.sum(2 * s.hidden(), 4))
                : Exact.product(tables, s.vocab(), s.hidden(), b.full ? 4 : e);
        long norms = Exact.product(Exact.sum(Exact.product(s.layers(), s.normElements()), s.hidden()), b.full ? 4 : e);
        frozenDense = Exact.sum(tableBytes, norms);
        parts.add(new Part("embeddings_head_norms", frozenDense, Place.DEVICE, (tables == 1 ? "tied embedding table"
                : "embedding table and lm_head") + (!b.full && s.sixteenBitTables() ? " in 16 bits with row scales"
                        : " in float" + (b.full ? 32 : 8 * e)) + ", norms"));
        List<Long> tensors = trainableTensors();
        long trainable = tensors.stream().mapToLong(Long::longValue).reduce(0, Exact::sum);
        if (!b.full) {
            parts.add(new Part("adapter_weights", Exact.product(trainable, 4), Place.DEVICE, String.format(Locale.ROOT,
                    "%s r %d on %s: %,d float32 parameters", b.variant.name(), b.rank, String.join(", ",
                            b.targets), trainable)));
        }
        parts.add(new Part("gradients", Exact.product(trainable, 4), Place.DEVICE, "float32, one per trained parameter"));
        long state = 0;
        for (long n : tensors) {
            state = Exact.sum(state, b.optim.stateBytes(n));
        }
        ProcessOverhead overhead = ProcessOverhead.of(b.device.key());
        ActivationModel activations = new ActivationModel(s, e, b.full ? 0 : b.rank, b.dropout,
                overhead.smallArrayBytes());
        Activations act = activations.of(new RecomputePolicy(b.recompute, b.kept, b.skippedLayers), b.batch, b.seq);
        Optional<Part> held = heldWeights();
        long resident = Exact.sum(base, frozenDense, Exact.product(trainable, 8), act.peak().total(),
                overhead.deviceBytes(), held.map(Part::bytes).orElse(0L));
        long onDevice = optimizerOnDevice(state, resident);
        parts.add(new Part("optimizer_device", onDevice, Place.DEVICE, optimizerDetail(state, onDevice)));
        parts.add(new Part("optimizer_host", state - onDevice, Place.HOST, spillDetail(state - onDevice)));
        parts.add(new Part("activations", (b.device == Device.CPU ? act.highWater() : act.peak()).total(), Place.DEVICE,
                activationDetail(act)));
        held.ifPresent(parts::add);
        if (b.device == Device.CUDA) {
            parts.add(new Part("cuda_context", overhead.deviceBytes(), Place.DEVICE, overhead.measured()));
            parts.add(new Part("process", overhead.hostBytes(), Place.HOST, "JVM, libtorch and CUDA libraries: "
                    + overhead.measured()));
        } else {
            long perMille = overhead.retainedPerMille().get(b.recompute);
            // the skipped layers' graphs stay live from their forward pass to their backward: the heap's churn,
            // which the factor was fitted on, is the recompute's without them
            long churned = b.skippedLayers == 0 ? act.highWater().small() : activations
                    .of(new RecomputePolicy(b.recompute, b.kept, 0), b.batch, b.seq).highWater().small();
            long retained = Exact.product(churned, perMille) / 1000;
            parts.add(new Part("allocator_retained", retained, Place.HOST, String.format(Locale.ROOT,
                    "what glibc's heap keeps beyond the live arrays below %d MiB (%.2f x their %.1f MB, measured;"
                    + " allocator %s)", overhead.smallArrayBytes() >> 20, perMille / 1000.0,
                    act.highWater().small() / 1e6, overhead.allocator())));
            parts.add(new Part("process", overhead.hostBytes(), Place.HOST, "JVM and libtorch: " + overhead.measured()));
        }
        return new MemoryPlan(b.device.key(), parts, b.limitBytes, b.limitSource);
    }

    /**
     * The top blocks' base weights held dequantized from their forward pass to their recompute ({@code TrainStep}):
     * as many whole blocks below the skipped layers as {@code held_weights_mb} takes, in the compute dtype (full or
     * selective recompute alike); none without recompute, over a dense base or in full fine-tuning (nothing to
     * dequantize), or with a budget below one block.
     */
    private Optional<Part> heldWeights() {
        long block = 0;
        for (ModelShape.Linear l : b.shape.linears()) {
            block = Exact.sum(block, Exact.product(l.out(), l.in(), b.computeBytes));
        }
        long blocks = b.recompute == Recompute.NONE || b.full || b.format == BaseFormats.DENSE ? 0
                : Math.min(b.shape.layers() - Math.min(b.skippedLayers, b.shape.layers()),
                        b.heldWeights / Math.max(1, block));
        return blocks == 0 ? Optional.empty() : Optional.of(new Part("held_weights", Exact.product(blocks, block),
                Place.DEVICE, String.format(Locale.ROOT, "the top %d of %d blocks' projections dequantized once per"
                        + " step (held_weights_mb %.0f)", blocks, b.shape.layers(), b.heldWeights / (double) (1 << 20))));
    }

    /** Element counts of every trained tensor (LoRA A, B and the variant's extras per module, or every weight). */
    private List<Long> trainableTensors() {
        ModelShape s = b.shape;
        List<Long> tensors = new ArrayList<>();
        for (int layer = 0; layer < s.layers(); layer++) {
            for (ModelShape.Linear l : s.linears()) {
                if (b.full) {
                    tensors.add(Exact.product(l.out(), l.in()));
                } else if (b.targets.contains(l.name())) {
                    tensors.add(Exact.product(b.rank, l.in()));
                    tensors.add(Exact.product(l.out(), b.rank));
                    long extra = b.variant.extraElements(l.in(), l.out());
                    if (extra > 0) {
                        tensors.add(extra);
                    }
                }
            }
            if (b.full) {
                tensors.add(s.normElements());
            }
        }
        if (b.full) {
            tensors.add(Exact.product(s.vocab(), s.hidden()));
            if (!s.tiedEmbeddings()) {
                tensors.add(Exact.product(s.vocab(), s.hidden()));
            }
            tensors.add(s.hidden());
        }
        return tensors;
    }

    /**
     * The optimizer state on the device: all of it unless paged; paged, up to {@code paged_budget_mb}, or on CUDA by
     * default what the device has free beside everything else less the margin, at least one page ({@link DeviceBudget},
     * the rule the paged store follows).
     */
    private long optimizerOnDevice(long state, long otherDevice) {
        if (!b.optim.paged()) {
            return state;
        }
        if (b.pagedBudget != null) {
            return Math.min(state, Math.max(b.pageBytes, b.pagedBudget));
        }
        if (b.device == Device.CPU || b.limitBytes == null) {
            return state;
        }
        return Math.min(state, DeviceBudget.of(Math.max(0, b.limitBytes - otherDevice), b.limitBytes, b.pageBytes));
    }

    private String optimizerDetail(long state, long onDevice) {
        String budget = !b.optim.paged() ? "all resident" : b.pagedBudget != null
                ? String.format(Locale.ROOT, "paged_budget_mb %s%s", mib(b.pagedBudget), b.pagedBudget < b.pageBytes
                        ? ", raised to one " + mib(b.pageBytes) + " MiB page (the least the paged store keeps)" : "")
                : b.device == Device.CUDA && b.limitBytes != null ? "default budget: free device memory less "
                        + DeviceBudget.margin(b.limitBytes) / (1 << 20) + " MiB" : "no budget";
        return String.format(Locale.ROOT, "%s state (%s) %,d bytes, %,d of them on the device; %s", b.optim.key(),
                b.optim.eightBit() ? "8-bit blocks" : "float32 moments", state, onDevice, budget);
    }

    /** The state beyond the device budget and where it goes. */
    private String spillDetail(long spilled) {
        if (spilled == 0) {
            return "nothing paged out";
        }
        return String.format(Locale.ROOT, "%,d bytes of state beyond the device budget, in %s; each step copies the"
                + " pages it updates to the device and back", spilled, b.device == Device.CUDA
                        ? "pinned host memory (cudaHostAlloc, copied with cudaMemcpyAsync)" : "host buffers");
    }

    private static String mib(long bytes) {
        double m = bytes / (double) (1 << 20);
        return m == Math.rint(m) ? String.format(Locale.ROOT, "%.0f", m) : String.format(Locale.ROOT, "%.4g", m);
    }

    private String activationDetail(Activations a) {
        String policy = switch (a.policy()) {
            case NONE -> "whole graph";
            case BLOCK -> "recompute per block";
            case SELECTIVE -> "selective recompute keeping the base products of " + String.join(", ", b.kept) + " ("
                    + mb(new ActivationModel(b.shape, b.computeBytes, b.full ? 0 : b.rank, b.dropout, 0)
                            .keptBytes(b.kept, b.batch, b.seq)) + ")";
        };
        boolean recomputed = a.policy() != Recompute.NONE;
        long skipped = Math.min(b.skippedLayers, b.shape.layers());
        String graphs = !recomputed || skipped == 0 ? "" : String.format(Locale.ROOT, ", %s (not recomputed) %s",
                skipped == 1 ? "graph of the top layer" : "graphs of the top " + skipped + " layers",
                mb(a.graph().total()));
        return String.format(Locale.ROOT, "batch %d x %d tokens, %s: hidden states %s, %s %s%s, loss head %s (%d-token"
                + " chunks)", b.batch, b.seq, policy, mb(a.hiddenStates().total()), recomputed ? "one recomputed block"
                        : "graph of all blocks", mb((recomputed ? a.block() : a.graph()).total()), graphs,
                mb(a.lossHead().total()),
                ActivationModel.chunkTokens(b.shape.vocab()));
    }

    private static String mb(long bytes) {
        return String.format(Locale.ROOT, "%.1f MB", bytes / 1e6);
    }

    /** The settings of a plan; {@code opt*} setters, defaults as a job file's. */
    public static final class Builder {
        private final ModelShape shape;
        private BaseFormat format = BaseFormats.QLORA;
        private boolean full;
        private int rank = 8;
        private List<String> targets;
        private AdapterVariant variant = AdapterVariants.lora();
        private boolean dropout;
        private Optim optim = Optim.ADAMW_TORCH;
        private Long pagedBudget;
        private long pageBytes = 1 << 20;
        private Recompute recompute = Recompute.BLOCK;
        private List<String> kept = List.of();
        private int skippedLayers;
        private long heldWeights;
        private long batch = 1;
        private long seq = 2048;
        private int computeBytes = 4;
        private Device device = Device.CPU;
        private Long limitBytes;
        private String limitSource;

        private Builder(ModelShape shape) {
            this.shape = shape;
            this.targets = shape.linears().stream().map(ModelShape.Linear::name).toList();
        }

        private Builder copy() {
            Builder c = new Builder(shape);
            c.format = format;
            c.full = full;
            c.rank = rank;
            c.targets = targets;
            c.variant = variant;
            c.dropout = dropout;
            c.optim = optim;
            c.pagedBudget = pagedBudget;
            c.pageBytes = pageBytes;
            c.recompute = recompute;
            c.kept = kept;
            c.skippedLayers = skippedLayers;
            c.heldWeights = heldWeights;
            c.batch = batch;
            c.seq = seq;
            c.computeBytes = computeBytes;
            c.device = device;
            c.limitBytes = limitBytes;
            c.limitSource = limitSource;
            return c;
        }

        /** The LoRA rank set. */
        int rank() {
            return rank;
        }

        /** The optimizer set. */
        Optim optim() {
            return optim;
        }

        /** The page size set. */
        long pageBytes() {
            return pageBytes;
        }

        /** The recompute policy set. */
        Recompute recompute() {
            return recompute;
        }

        /** The kept products set. */
        List<String> kept() {
            return kept;
        }

        /** The skipped layers set. */
        int skippedLayers() {
            return skippedLayers;
        }

        /** The model's shape. */
        ModelShape shape() {
            return shape;
        }

        /** Whether every weight trains. */
        boolean fullFinetune() {
            return full;
        }

        /** The batch set. */
        long batch() {
            return batch;
        }

        /** The base projections' storage format (default NF4+DQ). */
        public Builder optFormat(BaseFormat value) {
            this.format = value;
            return this;
        }

        /** Trains every weight in float32 ({@code finetuning_type: full}) instead of adapters. */
        public Builder optFullFinetune(boolean value) {
            this.full = value;
            return this;
        }

        /** LoRA rank (default 8). */
        public Builder optRank(int value) {
            this.rank = value;
            return this;
        }

        /** The adapted projections by block module name (default all). */
        public Builder optTargets(List<String> value) {
            this.targets = List.copyOf(value);
            return this;
        }

        /** The adapter variant (default plain LoRA). */
        public Builder optVariant(AdapterVariant value) {
            this.variant = value;
            return this;
        }

        /** Whether LoRA dropout is on (its masks are kept per module). */
        public Builder optDropout(boolean value) {
            this.dropout = value;
            return this;
        }

        /** The optimizer (default adamw_torch). */
        public Builder optOptim(Optim value) {
            this.optim = value;
            return this;
        }

        /**
         * The paged optimizer's device budget in bytes as {@code paged_budget_mb} asks (below one page, one page is
         * kept, as the paged store does); null for its default.
         */
        public Builder optPagedBudget(Long value) {
            this.pagedBudget = value;
            return this;
        }

        /** The paged optimizer's page size in bytes ({@code paged_page_kb}, default 1 MiB). */
        public Builder optPageBytes(long value) {
            this.pageBytes = value;
            return this;
        }

        /** What the backward pass recomputes (default every block). */
        public Builder optRecompute(Recompute value) {
            this.recompute = value;
            return this;
        }

        /** The projections whose base products a selective recompute keeps (default none). */
        public Builder optKeptProducts(List<String> value) {
            this.kept = List.copyOf(value);
            return this;
        }

        /**
         * The top blocks whose forward pass keeps its graph instead of being recomputed
         * ({@code gradient_checkpointing_skip_layers}; default 0); recompute only.
         */
        public Builder optSkippedLayers(int value) {
            this.skippedLayers = value;
            return this;
        }

        /** Bytes the top blocks may hold their dequantized weights in under recompute ({@code held_weights_mb}; 0). */
        public Builder optHeldWeights(long value) {
            this.heldWeights = value;
            return this;
        }

        /** Rows per micro-batch (default 1). */
        public Builder optBatch(long value) {
            this.batch = value;
            return this;
        }

        /** Tokens per row: cutoff_len, which packing fills and padding reaches at most (default 2048). */
        public Builder optSeq(long value) {
            this.seq = value;
            return this;
        }

        /** Bytes per element of the compute dtype: 4 (float32, default) or 2 (float16). */
        public Builder optComputeBytes(int value) {
            this.computeBytes = value;
            return this;
        }

        /** The machine kind (default the CPU). */
        public Builder optDevice(Device value) {
            this.device = value;
            return this;
        }

        /** The memory the plan must fit and where that figure came from; null for none known. */
        public Builder optLimit(Long bytes, String source) {
            this.limitBytes = bytes;
            this.limitSource = source;
            return this;
        }

        /** The planner. */
        public MemoryPlanner build() {
            return new MemoryPlanner(this);
        }
    }
}
