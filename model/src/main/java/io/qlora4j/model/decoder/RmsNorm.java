package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.model.GraphCasts;
import io.qlora4j.model.GraphScalars;

/** The RMSNorm flavours of the families, as transformers computes them; every cast keeps the graph. */
public enum RmsNorm {
    /**
     * Llama's ({@code LlamaRMSNorm}, also Mistral's, Qwen's, Phi-3's): in float32,
     * {@code x / sqrt(mean(x^2) + eps)}, cast back to x's dtype, then {@code * weight} in that dtype.
     */
    WEIGHTED(1) {
        @Override
        public NDArray apply(NDArray x, NDArray weight, double eps) {
            NDArray x32 = GraphCasts.to(x, DataType.FLOAT32);
            return GraphCasts.to(normalize(x32, eps), x.getDataType()).mul(GraphCasts.to(weight, x.getDataType()));
        }
    },
    /**
     * Gemma's ({@code GemmaRMSNorm}): everything in float32, {@code x / sqrt(mean(x^2) + eps) * (1 + weight)}, then
     * cast to x's dtype; its stored weights are near 0.
     */
    OFFSET(0) {
        @Override
        public NDArray apply(NDArray x, NDArray weight, double eps) {
            NDArray w32 = GraphCasts.to(weight, DataType.FLOAT32);
            NDArray scale = w32.add(GraphScalars.of(w32, 1));
            return GraphCasts.to(normalize(GraphCasts.to(x, DataType.FLOAT32), eps).mul(scale), x.getDataType());
        }
    };

    private final double identityWeight;

    RmsNorm(double identityWeight) {
        this.identityWeight = identityWeight;
    }

    /** The weight value that leaves the normalized input unscaled (what transformers initializes it to). */
    public double identityWeight() {
        return identityWeight;
    }

    /** Normalizes the last axis of {@code x} and scales by {@code weight [width]}; the result has x's dtype. */
    public abstract NDArray apply(NDArray x, NDArray weight, double eps);

    private static NDArray normalize(NDArray x32, double eps) {
        NDArray rms = x32.square().mean(new int[] {-1}, true).add((float) eps).sqrt();
        return x32.div(rms);
    }
}
