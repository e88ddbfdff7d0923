package io.qlora4j.model;

import ai.djl.ndarray.NDArray;

/**
 * A linear layer a decoder block multiplies through: {@code y = x W^T + b} for inputs of shape {@code [..., in]}.
 * A frozen base layer in some number format ({@link BaseLinear}), a LoRA-wrapped layer and a fully trained dense
 * layer all implement it, so a block neither knows nor cares which it holds. The result belongs to the manager of
 * {@code x} (and to the current {@code NDScope}).
 */
public interface LinearLayer extends AutoCloseable {
    /** Applies the layer to {@code x [..., in]} and returns {@code [..., out]}. */
    NDArray forward(NDArray x);

    /**
     * {@code gradOutput W} for {@code gradOutput [..., out]}: the gradient with respect to the input, computed
     * without a graph, so that a loss head can backpropagate through a large output layer without keeping
     * its activations or a widened copy of its weight.
     */
    NDArray inputGradient(NDArray gradOutput);

    /** The input width. */
    long inFeatures();

    /** The output width. */
    long outFeatures();

    /** Bytes the layer keeps resident (weights, scales, bias). */
    long bytes();

    /** Releases the layer's arrays. */
    @Override
    void close();
}
