package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
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
 * records no graph and works whether or not a GradientCollector is open. The state is kept in a
 * {@link StateStore} this optimizer owns; close the optimizer to free it.
 */
public final class AdamW implements AutoCloseable {

    private final double beta1;
    private final double beta2;
    private final double epsilon;
    private final double weightDecay;
    private final StateStore state;

    private AdamW(Builder builder) {
        beta1 = builder.beta1;
        beta2 = builder.beta2;
        epsilon = builder.epsilon;
        weightDecay = builder.weightDecay;
        state = new DeviceStateStore();
    }

    /**
     * Returns a builder with torch's and HF Trainer's defaults: betas (0.9, 0.999), eps 1e-8,
     * weight decay 0.
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Updates every parameter in place from its accumulated gradient with learning rate {@code lr}
     * (a double, as torch keeps it). Call it after backward and clipping, then zero the gradients.
     * A parameter whose gradient was never computed steps with a zero gradient (torch skips it).
     */
    public void step(List<Parameter> params, double lr) {
        if (!(lr >= 0 && Double.isFinite(lr))) {
            throw new IllegalArgumentException("learning rate must be finite and >= 0, got " + lr);
        }
        Set<String> seen = new HashSet<>();
        for (Parameter param : params) {
            if (!seen.add(param.name())) {
                throw new IllegalArgumentException(
                        "parameter '" + param.name() + "' is passed twice to one step");
            }
            try (NDScope scope = new NDScope()) {
                update(param, lr);
                scope.suppressNotUsedWarning();
            }
        }
    }

    /**
     * Copies the optimizer state to host tensors keyed {@code <param>.step}, {@code
     * <param>.exp_avg} and {@code <param>.exp_avg_sq}, for {@code optimizer.safetensors}.
     */
    public Map<String, StateTensor> exportState() {
        return state.export();
    }

    /**
     * Replaces the optimizer state by one {@link #exportState} produced; the next step continues
     * exactly where the exported optimizer stopped. Shapes are checked at each parameter's next
     * step.
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
        NDArray grad = param.gradient();
        // a detached view shares the parameter's memory and may be changed in place in grad mode
        NDArray weight = value.stopGradient();
        NDArray expAvg = state.acquire(name, StateKind.EXP_AVG, value);
        NDArray expAvgSq = state.acquire(name, StateKind.EXP_AVG_SQ, value);
        int step = state.nextStep(name);

        if (weightDecay != 0) {
            weight.muli((float) (1 - lr * weightDecay));
        }
        expAvg.addi(grad.sub(expAvg).muli((float) (1 - beta1)));
        expAvgSq.muli((float) beta2).addi(grad.mul((float) (1 - beta2)).muli(grad));

        double biasCorrection1 = 1 - Math.pow(beta1, step);
        double biasCorrection2 = 1 - Math.pow(beta2, step);
        double stepSize = lr / biasCorrection1;
        NDArray denom =
                expAvgSq.sqrt().divi((float) Math.sqrt(biasCorrection2)).addi((float) epsilon);
        weight.addi(expAvg.mul((float) -stepSize).divi(denom));

        state.release(name, StateKind.EXP_AVG, expAvg);
        state.release(name, StateKind.EXP_AVG_SQ, expAvgSq);
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

        /** Validates the settings as torch does and builds the optimizer. */
        public AdamW build() {
            checkRange("beta1", beta1, 0, 1);
            checkRange("beta2", beta2, 0, 1);
            checkRange("epsilon", epsilon, 0, Double.POSITIVE_INFINITY);
            checkRange("weight decay", weightDecay, 0, Double.POSITIVE_INFINITY);
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
