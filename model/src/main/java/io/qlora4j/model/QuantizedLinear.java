package io.qlora4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.qlora4j.quant.NdQuantizedTensor;
import io.qlora4j.quant.QuantizedTensor;
import java.util.Arrays;

/**
 * A frozen linear layer whose weight {@code [out, in]} stays 4-bit (NF4 or FP4, optionally with
 * double-quantized scales) on the device. Each call dequantizes the weight on the device, multiplies,
 * and frees the dequantized copy at once, so the layer keeps only the packed form between calls.
 */
public final class QuantizedLinear implements FrozenLinear {
    private final NdQuantizedTensor weight;
    private final NDArray bias;

    /** Wraps a device-resident quantized weight of shape {@code [out, in]} and a bias {@code [out]} (or null). */
    public QuantizedLinear(NdQuantizedTensor weight, NDArray bias) {
        long[] shape = weight.shape();
        if (shape.length != 2) {
            throw new IllegalArgumentException("linear weight must be [out, in], got " + Arrays.toString(shape));
        }
        if (bias != null && (bias.getShape().dimension() != 1 || bias.getShape().get(0) != shape[0])) {
            throw new IllegalArgumentException("bias must be [" + shape[0] + "], got " + bias.getShape());
        }
        this.weight = weight;
        this.bias = bias;
    }

    /** Uploads {@code weight} to {@code manager}'s device and wraps it with {@code bias} (or null). */
    public static QuantizedLinear upload(QuantizedTensor weight, NDArray bias, NDManager manager) {
        return new QuantizedLinear(NdQuantizedTensor.upload(weight, manager), bias);
    }

    @Override
    public NDArray forward(NDArray x) {
        NDArray y;
        try (NDArray w = weight.dequantize(); NDArray cast = w.toType(x.getDataType(), false);
                NDArray transposed = cast.transpose()) {
            y = x.matMul(transposed);
        }
        return bias == null ? y : y.addi(bias);
    }

    @Override
    public long inFeatures() {
        return weight.shape()[1];
    }

    @Override
    public long outFeatures() {
        return weight.shape()[0];
    }

    /** Device bytes: packed codes, scales and tables of the weight, plus the bias. */
    @Override
    public long bytes() {
        long b = weight.bytes();
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
