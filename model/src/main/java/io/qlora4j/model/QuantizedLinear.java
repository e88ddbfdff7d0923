package io.qlora4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.quant.NdQuantizedTensor;
import io.qlora4j.quant.QuantizedTensor;
import java.util.Arrays;
import java.util.function.Function;

/**
 * A base linear layer whose weight {@code [out, in]} stays 4-bit (NF4 or FP4, optionally with
 * double-quantized scales) on the device. Each call dequantizes the weight on the device, multiplies,
 * and frees the dequantized copy at once, so the layer keeps only the packed form between calls.
 */
public final class QuantizedLinear extends BiasedLinear {
    private final NdQuantizedTensor weight;

    /** Wraps a device-resident quantized weight of shape {@code [out, in]} and a bias {@code [out]} (or null). */
    public QuantizedLinear(NdQuantizedTensor weight, NDArray bias) {
        super(bias, requireMatrix(weight.shape())[0]);
        this.weight = weight;
    }

    private static long[] requireMatrix(long[] shape) {
        if (shape.length != 2) {
            throw new IllegalArgumentException("linear weight must be [out, in], got " + Arrays.toString(shape));
        }
        return shape;
    }

    /** Uploads {@code weight} to {@code manager}'s device and wraps it with {@code bias} (or null). */
    public static QuantizedLinear upload(QuantizedTensor weight, NDArray bias, NDManager manager) {
        return new QuantizedLinear(NdQuantizedTensor.upload(weight, manager), bias);
    }

    /** {@code use} applied to the weight dequantized on the device and cast to {@code type}, freed after the call. */
    @Override
    public <R> R withWeight(DataType type, Function<NDArray, R> use) {
        try (NDArray w = weight.dequantize(); NDArray cast = w.toType(type, false)) {
            return use.apply(cast);
        }
    }

    @Override
    public long inFeatures() {
        return weight.shape()[1];
    }

    @Override
    public long outFeatures() {
        return weight.shape()[0];
    }

    /** Device bytes of the packed codes, scales and tables. */
    @Override
    long weightBytes() {
        return weight.bytes();
    }

    @Override
    void closeWeight() {
        weight.close();
    }
}
