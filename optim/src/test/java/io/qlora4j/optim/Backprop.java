package io.qlora4j.optim;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.training.GradientCollector;

/** Test helper: produces exact, chosen gradients through DJL's real autograd. */
final class Backprop {

    private Backprop() {}

    /** Runs backward on {@code sum(w * g)}, which adds exactly {@code g} to w's gradient. */
    static void accumulate(NDArray w, float[] g) {
        try (NDScope scope = new NDScope();
                GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            scope.suppressNotUsedWarning();
            NDArray upstream = w.getManager().create(g, w.getShape());
            collector.backward(w.mul(upstream).sum());
        }
    }

    /** Creates a float32 parameter that requires a gradient. */
    static Parameter parameter(NDManager manager, String name, float[] values) {
        NDArray w = manager.create(values);
        w.setRequiresGradient(true);
        return new Parameter(name, w);
    }
}
