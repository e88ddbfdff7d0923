package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import io.qlora4j.model.GraphScalars;

/** Gemma 2's tanh soft-capping {@code tanh(x / cap) * cap}, which bounds scores and logits to {@code (-cap, cap)}. */
public final class SoftCap {
    private SoftCap() {}

    /** {@code tanh(x / cap) * cap}, differentiable with respect to x, in x's dtype. */
    public static NDArray apply(NDArray x, double cap) {
        return GraphScalars.times(x.div(GraphScalars.of(x, cap)).tanh(), cap);
    }

    /** The derivative {@code 1 - (y / cap)^2} of the capped value {@code y} with respect to its input. */
    public static NDArray derivative(NDArray capped, double cap) {
        NDArray t = capped.div(GraphScalars.of(capped, cap));
        return t.mul(t).neg().add(GraphScalars.of(t, 1));
    }
}
