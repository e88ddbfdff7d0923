package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.model.GraphCasts;

/** The RMSNorm flavours of the families, as transformers computes them; every cast keeps the graph. */
public enum RmsNorm {
    /**
     * Llama's: in float32, {@code x / sqrt(mean(x^2) + eps)}, cast back to x's dtype, then {@code * weight} in that
     * dtype.
     */
    WEIGHTED {
        @Override
        public NDArray apply(NDArray x, NDArray weight, double eps) {
            NDArray x32 = GraphCasts.to(x, DataType.FLOAT32);
            NDArray rms = x32.square().mean(new int[] {-1}, true).add((float) eps).sqrt();
            return GraphCasts.to(x32.div(rms), x.getDataType()).mul(GraphCasts.to(weight, x.getDataType()));
        }
    };

    /** The weight value that leaves the normalized input unscaled (what transformers initializes it to). */
    public double identityWeight() {
        return 1;
    }

    /** Normalizes the last axis of {@code x} and scales by {@code weight [width]}; the result has x's dtype. */
    public abstract NDArray apply(NDArray x, NDArray weight, double eps);
}
