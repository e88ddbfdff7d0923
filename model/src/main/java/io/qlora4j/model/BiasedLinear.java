package io.qlora4j.model;

import ai.djl.ndarray.NDArray;

/**
 * What every base-weight format shares: the optional dense bias {@code [out]} added after the
 * format's own product {@code x W^T}, and the bookkeeping of bytes and closing.
 */
abstract class BiasedLinear implements BaseLinear {
    private final NDArray bias;

    BiasedLinear(NDArray bias, long outFeatures) {
        if (bias != null && (bias.getShape().dimension() != 1 || bias.getShape().get(0) != outFeatures)) {
            throw new IllegalArgumentException("bias must be [" + outFeatures + "], got " + bias.getShape());
        }
        this.bias = bias;
    }

    /**
     * {@code x W^T} for {@code x [..., in]}, in the manager of x, with the weight lent in x's dtype; a format that
     * can do better than one whole weight at a time overrides it.
     */
    NDArray multiply(NDArray x) {
        return withWeight(x.getDataType(), w -> product(x, w));
    }

    /** {@code x w^T}. */
    static NDArray product(NDArray x, NDArray w) {
        try (NDArray transposed = w.transpose()) {
            return x.matMul(transposed);
        }
    }

    /** {@link #multiply} in a pass that records no graph ({@link #forwardGraphFree}); by default the same call. */
    NDArray multiplyGraphFree(NDArray x) {
        return multiply(x);
    }

    @Override
    public NDArray inputGradient(NDArray gradOutput) {
        return withWeight(gradOutput.getDataType(), gradOutput::matMul);
    }

    /** Bytes of the weight in its stored form. */
    abstract long weightBytes();

    /** Releases the weight. */
    abstract void closeWeight();

    @Override
    public final NDArray bias() {
        return bias;
    }

    @Override
    public final NDArray forward(NDArray x) {
        return withBias(multiply(x));
    }

    @Override
    public final NDArray forwardGraphFree(NDArray x) {
        return withBias(multiplyGraphFree(x));
    }

    private NDArray withBias(NDArray y) {
        return bias == null ? y : y.addi(bias);
    }

    @Override
    public final long bytes() {
        long b = weightBytes();
        return bias == null ? b : b + bias.size() * bias.getDataType().getNumOfBytes();
    }

    @Override
    public final void close() {
        closeWeight();
        if (bias != null) {
            bias.close();
        }
    }
}
