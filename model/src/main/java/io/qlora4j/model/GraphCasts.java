package io.qlora4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * Dtype casts that keep the graph: DJL runs {@code toType} without recording it, so a float16 model
 * would lose every gradient at its first cast. Widening adds a zero of the wider type (type
 * promotion); narrowing adds in place into a zero array of the narrower type, which autograd records
 * as an add whose gradient is cast back.
 */
public final class GraphCasts {
    private GraphCasts() {}

    /** {@code x} as {@code type} (x itself when it has that type already), differentiable with respect to x. */
    public static NDArray to(NDArray x, DataType type) {
        DataType from = x.getDataType();
        if (from == type) {
            return x;
        }
        if (type.getNumOfBytes() > from.getNumOfBytes()) {
            return x.add(x.getManager().zeros(new Shape(1), type));
        }
        return x.getManager().zeros(x.getShape(), type).addi(x);
    }
}
