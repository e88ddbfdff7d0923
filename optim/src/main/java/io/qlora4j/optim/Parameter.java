package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import java.util.Objects;

/**
 * A named trainable tensor as the trainer hands it to the optimizer: the model's own array (updated
 * in place) whose gradient is {@code value.getGradient()}.
 *
 * @param name the parameter's unique name, used as the key of its optimizer state
 * @param value the parameter array; it must require a gradient
 * @param lrScale the factor of this parameter's learning rate over the step's: torch's parameter groups,
 *     whose learning rates the schedule scales alike (LoRA+ trains B at {@code loraplus_lr_ratio} times A's)
 */
public record Parameter(String name, NDArray value, double lrScale) {

    /** Checks that the name is not empty, the value is present and the scale is finite and not negative. */
    public Parameter {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(value, "value");
        if (name.isEmpty()) {
            throw new IllegalArgumentException("a parameter name must not be empty");
        }
        if (!(lrScale >= 0 && Double.isFinite(lrScale))) {
            throw new IllegalArgumentException("parameter '" + name + "': learning-rate scale must be finite and >= 0,"
                    + " got " + lrScale);
        }
    }

    /** A parameter at the step's learning rate (scale 1). */
    public Parameter(String name, NDArray value) {
        this(name, value, 1);
    }

    /**
     * Returns a new handle on this parameter's accumulated gradient (the same memory, so in-place
     * ops change the gradient); the caller closes it or lets its NDScope do so.
     */
    NDArray gradient() {
        if (!value.hasGradient()) {
            throw new IllegalArgumentException(
                    "parameter '" + name + "' does not require a gradient");
        }
        return value.getGradient();
    }
}
