package io.qlora4j.optim;

import ai.djl.ndarray.types.Shape;
import java.util.Objects;

/**
 * One optimizer state tensor as host data, for checkpoints: its shape and its float32 values in
 * row-major order (a step count is a scalar, shape {@code ()}, as torch stores it).
 *
 * @param shape the tensor's shape
 * @param values the float32 values, {@code shape.size()} of them
 */
public record StateTensor(Shape shape, float[] values) {

    /** Checks that the value count matches the shape. */
    public StateTensor {
        Objects.requireNonNull(shape, "shape");
        Objects.requireNonNull(values, "values");
        if (shape.size() != values.length) {
            throw new IllegalArgumentException(
                    "state tensor of shape " + shape + " needs " + shape.size() + " values, got "
                            + values.length);
        }
    }
}
