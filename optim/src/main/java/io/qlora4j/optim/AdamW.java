package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;
import java.util.Set;

/**
 * AdamW with the semantics of {@code torch.optim.AdamW}: decoupled weight decay applied first,
 * bias-corrected moments, epsilon added outside the square root. For update {@code t} (1-based,
 * counted per parameter):
 *
 * <pre>
 * p -= lr * weightDecay * p
 * m  = m + (1 - beta1) * (g - m)             (torch's lerp_, i.e. beta1 * m + (1 - beta1) * g)
 * v  = beta2 * v + (1 - beta2) * g * g
 * p += -(lr / (1 - beta1^t)) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
 * </pre>
 *
 * <p>As in torch, the scalar coefficients are computed in double and each tensor op runs in
 * float32. Updates are in place on the caller's parameter arrays through a detached view, so a step
 * records no graph and works whether or not a GradientCollector is open. The update runs page by
 * page of the state (elementwise, so the result does not depend on the page size). The state is
 * kept as the chosen {@link Optim} says: float32 or bitsandbytes' 8-bit blocks (decoded to float32
 * for the update and coded again after it), resident or paged under a device budget; close the
 * optimizer to free it.
 */
public final class AdamW implements AutoCloseable {

    private final double beta1;
    private final double beta2;
    private final double epsilon;
    private final double weightDecay;
    private final Optim optim;
    private final StateStore state;

    private AdamW(Builder builder) {
        beta1 = builder.beta1;
        beta2 = builder.beta2;
        epsilon = builder.epsilon;
        weightDecay = builder.weightDecay;
        optim = builder.optim;
        long budget = optim.paged() ? builder.budgetBytes : PagedStateStore.UNLIMITED;
        state = new PagedStateStore(optim, builder.pageBytes, budget, builder.hostPages);
    }

    /**
     * Returns a builder with torch's and HF Trainer's defaults: betas (0.9, 0.999), eps 1e-8,
     * weight decay 0; {@link Optim#ADAMW_TORCH}.
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Updates every parameter in place from its accumulated gradient with learning rate {@code lr}
     * times the parameter's {@link Parameter#lrScale} (a double, as torch keeps it; decay is scaled
     * with it, as in a torch parameter group). Call it after backward and clipping, then zero the gradients.
     * A parameter whose gradient was never computed steps with a zero gradient (torch skips it).
     */
    public void step(List<Parameter> params, double lr) {
        if (!(lr >= 0 && Double.isFinite(lr))) {
            throw new IllegalArgumentException("learning rate must be finite and >= 0, got " + lr);
        }
        Set<String> seen = new LinkedHashSet<>();
        for (Parameter param : params) {
            if (!seen.add(param.name())) {
                throw new IllegalArgumentException(
                        "parameter '" + param.name() + "' is passed twice to one step");
            }
        }
        state.beginStep(List.copyOf(seen));
        for (Parameter param : params) {
            try (NDScope scope = new NDScope()) {
                update(param, lr * param.lrScale());
                scope.suppressNotUsedWarning();
            }
        }
    }

    /** The {@code optim:} this optimizer implements. */
    public Optim optim() {
        return optim;
    }

    /**
     * Where the state is now (bytes on the device and on the host) and the bytes the latest step
     * paged in and out.
     */
    public PagingStats pagingStats() {
        return state.stats();
    }

    /**
     * Copies the optimizer state to host float32 tensors for {@code optimizer.safetensors}, from
     * whichever tier it is in: {@code <param>.step} and, for float32 state, {@code
     * <param>.exp_avg} and {@code <param>.exp_avg_sq}; for 8-bit state {@code
     * <param>.exp_avg.codes}, {@code <param>.exp_avg.absmax}, {@code <param>.exp_avg_sq.codes},
     * {@code <param>.exp_avg_sq.absmax} (the codes 0..255 as floats).
     */
    public Map<String, StateTensor> exportState() {
        return state.export();
    }

    /**
     * Replaces the optimizer state by one {@link #exportState} produced; the next step continues
     * exactly where the exported optimizer stopped, whatever its budget or page size; the number
     * formats must match (float32 for {@code adamw_torch} / {@code paged_adamw_32bit}, 8-bit for
     * the others). Shapes are checked at each parameter's next step; the state sits in host memory
     * until then.
     */
    public void importState(Map<String, StateTensor> saved) {
        state.load(saved);
    }

    /** Frees the optimizer state. */
    @Override
    public void close() {
        state.close();
    }

    private void update(Parameter param, double lr) {
        String name = param.name();
        NDArray value = param.value();
        if (value.getDataType() != DataType.FLOAT32) {
            throw new IllegalArgumentException(
                    "parameter '" + name + "' is " + value.getDataType()
                            + "; AdamW updates float32 parameters");
        }
        // a detached view shares the parameter's memory and may be changed in place in grad mode
        long size = value.size();
        NDArray weight = value.stopGradient().reshape(size);
        NDArray grad = param.gradient().reshape(size);
        StateLayout layout = state.layout(name, value);
        int step = state.nextStep(name);
        double biasCorrection1 = 1 - Math.pow(beta1, step);
        double biasCorrection2 = 1 - Math.pow(beta2, step);
        for (int page = 0; page < layout.pages(); page++) {
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                NDArray w = layout.slice(weight, page);
                Moments moments = state.acquire(name, page, w);
                update(w, layout.slice(grad, page), moments, lr, biasCorrection1, biasCorrection2);
                state.release(name, page, moments);
            }
        }
    }

    private void update(NDArray weight, NDArray grad, Moments moments, double lr,
            double biasCorrection1, double biasCorrection2) {
        NDArray expAvg = moments.expAvg();
        NDArray expAvgSq = moments.expAvgSq();
        if (weightDecay != 0) {
            weight.muli((float) (1 - lr * weightDecay));
        }
        expAvg.addi(grad.sub(expAvg).muli((float) (1 - beta1)));
        expAvgSq.muli((float) beta2).addi(grad.mul((float) (1 - beta2)).muli(grad));

        double stepSize = lr / biasCorrection1;
        NDArray denom =
                expAvgSq.sqrt().divi((float) Math.sqrt(biasCorrection2)).addi((float) epsilon);
        weight.addi(expAvg.mul((float) -stepSize).divi(denom));
    }

    /**
     * Builds an {@link AdamW}. The settings are doubles because torch derives its float32
     * coefficients from double values ({@code (float) (1 - 0.9)} is not {@code 1 - 0.9f}).
     */
    public static final class Builder {

        private double beta1 = 0.9;
        private double beta2 = 0.999;
        private double epsilon = 1e-8;
        private double weightDecay;
        private Optim optim = Optim.ADAMW_TORCH;
        private long budgetBytes = PagedStateStore.DEVICE_FREE;
        private long pageBytes = PagedStateStore.DEFAULT_PAGE_BYTES;
        private HostPages hostPages = HostPages.direct();

        Builder() {}

        /** Sets the first-moment decay rate, in [0, 1) (default 0.9). */
        public Builder optBeta1(double beta1) {
            this.beta1 = beta1;
            return this;
        }

        /** Sets the second-moment decay rate, in [0, 1) (default 0.999). */
        public Builder optBeta2(double beta2) {
            this.beta2 = beta2;
            return this;
        }

        /** Sets the epsilon added to the denominator outside the square root (default 1e-8). */
        public Builder optEpsilon(double epsilon) {
            this.epsilon = epsilon;
            return this;
        }

        /** Sets the decoupled weight decay rate, multiplied by the learning rate (default 0). */
        public Builder optWeightDecay(double weightDecay) {
            this.weightDecay = weightDecay;
            return this;
        }

        /**
         * Sets where and how the state is kept, as the {@code optim:} names say (default {@link
         * Optim#ADAMW_TORCH}).
         */
        public Builder optOptim(Optim optim) {
            this.optim = Objects.requireNonNull(optim, "optim");
            return this;
        }

        /**
         * Sets the device budget for paged state in bytes ({@code paged_budget_mb}); a budget below
         * one page (0 included: everything paged out) keeps one page, the least the store updates
         * through. Default: unlimited on the CPU; on a GPU what it reports free at the first step,
         * less a safety margin.
         */
        public Builder optPagedBudget(long bytes) {
            this.budgetBytes = bytes;
            return this;
        }

        /**
         * Sets the size of a state page in bytes (default 1 MiB, at least 1 KiB): a page holds
         * both moments of {@code bytes / 8} elements as float32, or of {@code 256 * floor(bytes /
         * 520)} elements as 8-bit blocks.
         */
        public Builder optPageSize(long bytes) {
            this.pageBytes = bytes;
            return this;
        }

        /**
         * Sets where paged-out state lives and how it is copied (default {@link HostPages#direct}; on CUDA
         * {@link HostPages#forDevice} gives pinned pages). The optimizer closes it when it closes.
         */
        public Builder optHostPages(HostPages hostPages) {
            this.hostPages = Objects.requireNonNull(hostPages, "hostPages");
            return this;
        }

        /** Validates the settings as torch does and builds the optimizer. */
        public AdamW build() {
            checkRange("beta1", beta1, 0, 1);
            checkRange("beta2", beta2, 0, 1);
            checkRange("epsilon", epsilon, 0, Double.POSITIVE_INFINITY);
            checkRange("weight decay", weightDecay, 0, Double.POSITIVE_INFINITY);
            if (pageBytes < PagedStateStore.MIN_PAGE_BYTES) {
                throw new IllegalArgumentException(
                        "optimizer page size must be at least " + PagedStateStore.MIN_PAGE_BYTES
                                + " bytes, got " + pageBytes);
            }
            if (budgetBytes != PagedStateStore.DEVICE_FREE) {
                if (!optim.paged()) {
                    throw new IllegalArgumentException(
                            "a paged budget applies to paged optims only, not " + optim.key());
                }
                budgetBytes = Math.max(budgetBytes, pageBytes);
            }
            return new AdamW(this);
        }

        private static void checkRange(String what, double value, double min, double maxExclusive) {
            if (!(value >= min && value < maxExclusive)) {
                throw new IllegalArgumentException(
                        "AdamW " + what + " must be in [" + min + ", " + maxExclusive + "), got "
                                + value);
            }
        }
    }
}
