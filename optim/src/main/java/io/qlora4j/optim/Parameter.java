package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import java.util.Objects;

/**
 * A named trainable tensor as the trainer hands it to the optimizer: the model's own array (updated
 * in place) whose gradient is {@code value.getGradient()}.
 *
 * @param name the parameter's unique name, used as the key of its optimizer state
 * @param value the parameter array; it must require a gradient
 */
public record Parameter(String name, NDArray value) {

    /** Checks that the name is not empty and the value is present. */
    public Parameter {
        Objects.requireNonNull(name, "name");
        Objects.requireNonNull(value, "value");
        if (name.isEmpty()) {
            throw new IllegalArgumentException("a parameter name must not be empty");
        }
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
