package io.qlora4j.model.llama;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.model.GraphCasts;

/**
 * Llama's RMSNorm as transformers computes it: in float32, {@code x / sqrt(mean(x^2) + eps)}, cast back to
 * x's dtype, then {@code * weight} in that dtype; every cast keeps the graph.
 */
final class RmsNorm {
    private RmsNorm() {}

    /** Normalizes the last axis of {@code x} and scales by {@code weight [hidden]}; the result has x's dtype. */
    static NDArray apply(NDArray x, NDArray weight, double eps) {
        NDArray x32 = GraphCasts.to(x, DataType.FLOAT32);
        NDArray rms = x32.square().mean(new int[] {-1}, true).add((float) eps).sqrt();
        return GraphCasts.to(x32.div(rms), x.getDataType()).mul(GraphCasts.to(weight, x.getDataType()));
    }
}
