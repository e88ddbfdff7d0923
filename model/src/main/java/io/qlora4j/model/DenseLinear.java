package io.qlora4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.function.Function;

/**
 * A linear layer with a full-precision weight {@code [out, in]} (the {@code nn.Linear} layout) and
 * an optional bias {@code [out]}, kept on their device. The weight is used through a transposed view, not
 * a stored transpose: on CPU both run at the same speed, and the view lets a tied lm_head share the
 * embedding array itself.
 */
public final class DenseLinear extends BiasedLinear {
    private final NDArray weight;

    /** Wraps {@code weight [out, in]} and {@code bias [out]} (null for none); the layer owns both. */
    public DenseLinear(NDArray weight, NDArray bias) {
        super(bias, requireMatrix(weight.getShape()).get(0));
        this.weight = weight;
    }

    private static Shape requireMatrix(Shape w) {
        if (w.dimension() != 2) {
            throw new IllegalArgumentException("linear weight must be [out, in], got " + w);
        }
        return w;
    }

    /** The weight array {@code [out, in]} (shared, not copied). */
    public NDArray weight() {
        return weight;
    }

    /** {@code use} applied to the weight in {@code type}: itself, or a graph-keeping cast (a float16 model). */
    @Override
    public <R> R withWeight(DataType type, Function<NDArray, R> use) {
        NDArray w = GraphCasts.to(weight, type);
        try {
            return use.apply(w);
        } finally {
            if (w != weight) {
                w.close();
            }
        }
    }

    @Override
    public long inFeatures() {
        return weight.getShape().get(1);
    }

    @Override
    public long outFeatures() {
        return weight.getShape().get(0);
    }

    @Override
    long weightBytes() {
        return weight.size() * weight.getDataType().getNumOfBytes();
    }

    @Override
    void closeWeight() {
        weight.close();
    }
}
