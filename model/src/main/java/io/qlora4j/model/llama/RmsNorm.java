package io.qlora4j.model.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

/** Llama's RMSNorm as transformers computes it: in float32, {@code x / sqrt(mean(x^2) + eps)}, then {@code * weight}. */
final class RmsNorm {
    private RmsNorm() {}

    /** Normalizes the last axis of {@code x} and scales by {@code weight [hidden]}; the result has x's dtype. */
    static NDArray apply(NDArray x, NDArray weight, double eps) {
        NDArray x32 = x.toType(DataType.FLOAT32, false);
        NDArray rms = x32.square().mean(new int[] {-1}, true).add((float) eps).sqrt();
        return x32.div(rms).toType(x.getDataType(), false).mul(weight);
    }
}
