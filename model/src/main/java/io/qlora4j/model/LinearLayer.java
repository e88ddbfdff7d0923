package io.qlora4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

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
     * {@link #forward} in a pass that records no graph (autograd off, as in a recomputing step's first pass: the
     * caller promises it, as {@code BlockCalls.graphFree} does). Nothing can then keep the weight past the product, so
     * a quantized layer may dequantize it into memory it reuses for the next such product instead of fresh memory
     * ({@code DeviceWeight.dequantizeTransient}). The same bits as {@link #forward}, which is the default.
     */
    default NDArray forwardGraphFree(NDArray x) {
        return forward(x);
    }

    /**
     * {@code gradOutput W} for {@code gradOutput [..., out]}: the gradient with respect to the input, computed
     * without a graph, so that a loss head can backpropagate through a large output layer without keeping
     * its activations or a widened copy of its weight.
     */
    NDArray inputGradient(NDArray gradOutput);

    /**
     * Keeps the weight ready for products in {@code type} until the returned hold is closed: a layer that widens or
     * dequantizes its stored weight for every product (16-bit rows, quantized codes) does it once here and lends the
     * result to every product in {@code type} until then. Products are bit for bit the same with or without a hold;
     * only time and memory ({@link #heldBytes}) differ. A layer already held returns {@link WeightHold#NONE} (the
     * outer hold stays in charge); the default holds nothing (a dense weight is always ready).
     */
    default WeightHold hold(DataType type) {
        return WeightHold.NONE;
    }

    /** Bytes a {@link #hold} in {@code type} keeps while it lasts: 0 when the layer has nothing to prepare. */
    default long heldBytes(DataType type) {
        return 0;
    }

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
