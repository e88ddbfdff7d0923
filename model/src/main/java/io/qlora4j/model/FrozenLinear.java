package io.qlora4j.model;

import ai.djl.ndarray.NDArray;

/**
 * A linear layer whose weights never change during fine-tuning: {@code y = x W^T + b} for inputs of shape
 * {@code [..., in]}. Each number format (dense float, NF4, FP4, ...) is one implementation; LoRA wraps this
 * interface. The result belongs to the manager of {@code x} (and to the current {@code NDScope}).
 */
public interface FrozenLinear extends AutoCloseable {
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
