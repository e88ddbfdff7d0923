package io.qlora4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.quant.DeviceWeight;
import io.qlora4j.quant.NdQuantizedTensor;
import io.qlora4j.quant.QuantizedTensor;
import java.util.Arrays;
import java.util.function.Function;

/**
 * A base linear layer whose weight {@code [out, in]} stays in a compact storage format on the device (NF4/FP4,
 * LLM.int8, ...: any {@link DeviceWeight}). Each call dequantizes the weight on the device in the dtype asked for,
 * uses it, and frees the dequantized copy at once, so the layer keeps only the stored form between calls, unless a
 * caller {@linkplain #hold holds} it (a training step keeping a block's weights from its forward pass to its
 * recompute, within a memory budget). Products no graph records (a {@linkplain #forwardGraphFree graph-free} forward,
 * an {@linkplain #inputGradient input gradient}) take the weight {@linkplain DeviceWeight#dequantizeTransient
 * transiently}, in memory reused from one such product to the next. Every quantized base format is this class over
 * its own {@link DeviceWeight}.
 */
public final class QuantizedLinear extends BiasedLinear {
    private final DeviceWeight weight;
    /** The weight dequantized by {@link #hold}, or null. */
    private NDArray held;

    /** Wraps a device-resident weight of shape {@code [out, in]} and a bias {@code [out]} (or null); owns both. */
    public QuantizedLinear(DeviceWeight weight, NDArray bias) {
        super(bias, requireMatrix(weight.shape())[0]);
        this.weight = weight;
    }

    private static long[] requireMatrix(long[] shape) {
        if (shape.length != 2) {
            throw new IllegalArgumentException("linear weight must be [out, in], got " + Arrays.toString(shape));
        }
        return shape;
    }

    /** Uploads a bitsandbytes 4-bit {@code weight} to {@code manager}'s device and wraps it with {@code bias} (or null). */
    public static QuantizedLinear upload(QuantizedTensor weight, NDArray bias, NDManager manager) {
        return new QuantizedLinear(NdQuantizedTensor.upload(weight, manager), bias);
    }

    /**
     * {@code use} applied to the weight dequantized on the device as {@code type}, freed after the call; while a
     * {@link #hold} in {@code type} lasts, the held weight (the same values).
     */
    @Override
    public <R> R withWeight(DataType type, Function<NDArray, R> use) {
        return lend(type, weight::dequantize, use);
    }

    /**
     * {@code x W^T} with the weight {@linkplain DeviceWeight#dequantizeTransient dequantized transiently}: no graph
     * records this product, so nothing keeps the weight past it (a hold's weight is used when there is one).
     */
    @Override
    NDArray multiplyGraphFree(NDArray x) {
        return lend(x.getDataType(), weight::dequantizeTransient, w -> product(x, w));
    }

    /**
     * {@code gradOutput W}, without a graph as {@link LinearLayer#inputGradient} promises: the product reads a
     * detached view of {@code gradOutput}, so nothing records it and the weight is dequantized transiently (a hold's
     * weight is used when there is one).
     */
    @Override
    public NDArray inputGradient(NDArray gradOutput) {
        try (NDArray detached = gradOutput.stopGradient()) {
            return lend(gradOutput.getDataType(), weight::dequantizeTransient, detached::matMul);
        }
    }

    /**
     * {@code use} applied to the held weight while a {@link #hold} in {@code type} lasts, else to the weight
     * {@code dequantize} gives in {@code type}, freed after the call.
     */
    private <R> R lend(DataType type, Function<DataType, NDArray> dequantize, Function<NDArray, R> use) {
        if (held != null && held.getDataType() == type) {
            return use.apply(held);
        }
        try (NDArray w = dequantize.apply(type)) {
            return use.apply(w);
        }
    }

    /** Dequantizes the weight once and lends it to every use in {@code type} until the hold is closed. */
    @Override
    public WeightHold hold(DataType type) {
        if (held != null) {
            return WeightHold.NONE;
        }
        NDArray w = weight.dequantize(type);
        NDScope.unregister(w);
        held = w;
        return () -> {
            held = null;
            w.close();
        };
    }

    @Override
    public long heldBytes(DataType type) {
        return weight.shape()[0] * weight.shape()[1] * type.getNumOfBytes();
    }

    @Override
    public long inFeatures() {
        return weight.shape()[1];
    }

    @Override
    public long outFeatures() {
        return weight.shape()[0];
    }

    /** Device bytes of the stored weight (codes, scales, tables). */
    @Override
    long weightBytes() {
        return weight.bytes();
    }

    @Override
    void closeWeight() {
        if (held != null) {
            held.close();
            held = null;
        }
        weight.close();
    }
}
