package io.qlora4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Scalars as operands of differentiable ops. DJL 0.36 wraps a Java number operand ({@code x.mul(2f)})
 * around a direct buffer that is freed once garbage-collected, while autograd keeps reading it until
 * backward: after a GC the gradient of {@code sum(3x)} came out as 1.4e-45 or -1.3e34 instead of 3.
 * A natively allocated scalar array, owned by the operand's manager, is safe.
 */
public final class GraphScalars {
    private GraphScalars() {}

    /** {@code value} as a 0-d array of {@code like}'s dtype in {@code like}'s manager. */
    public static NDArray of(NDArray like, double value) {
        return like.getManager().full(new Shape(), (float) value, like.getDataType());
    }

    /** {@code value} as a 0-d float32 array in {@code manager}. */
    public static NDArray of(NDManager manager, double value) {
        return manager.full(new Shape(), (float) value, DataType.FLOAT32);
    }

    /** {@code x * value}, differentiable with respect to {@code x}. */
    public static NDArray times(NDArray x, double value) {
        return x.mul(of(x, value));
    }
}
