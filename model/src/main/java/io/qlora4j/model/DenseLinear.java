package io.qlora4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;

/**
 * A frozen linear layer with a full-precision weight {@code [out, in]} (the {@code nn.Linear} layout) and
 * an optional bias {@code [out]}, kept on their device. The weight is used through a transposed view, not
 * a stored transpose: on CPU both run at the same speed, and the view lets a tied lm_head share the
 * embedding array itself.
 */
public final class DenseLinear implements FrozenLinear {
    private final NDArray weight;
    private final NDArray bias;

    /** Wraps {@code weight [out, in]} and {@code bias [out]} (null for none); the layer owns both. */
    public DenseLinear(NDArray weight, NDArray bias) {
        Shape w = weight.getShape();
        if (w.dimension() != 2) {
            throw new IllegalArgumentException("linear weight must be [out, in], got " + w);
        }
        if (bias != null && !bias.getShape().equals(new Shape(w.get(0)))) {
            throw new IllegalArgumentException("bias must be [" + w.get(0) + "], got " + bias.getShape());
        }
        this.weight = weight;
        this.bias = bias;
    }

    /** The weight array {@code [out, in]} (shared, not copied). */
    public NDArray weight() {
        return weight;
    }

    /** The bias array {@code [out]}, or null. */
    public NDArray bias() {
        return bias;
    }

    @Override
    public NDArray forward(NDArray x) {
        NDArray y;
        try (NDArray transposed = weight.transpose()) {
            y = x.matMul(transposed);
        }
        return bias == null ? y : y.addi(bias);
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
    public long bytes() {
        long b = weight.size() * weight.getDataType().getNumOfBytes();
        return bias == null ? b : b + bias.size() * bias.getDataType().getNumOfBytes();
    }

    @Override
    public void close() {
        weight.close();
        if (bias != null) {
            bias.close();
        }
    }
}
