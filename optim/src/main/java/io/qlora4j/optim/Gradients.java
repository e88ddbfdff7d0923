package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import java.util.ArrayList;
import java.util.List;

/**
 * Whole-model gradient operations the trainer runs at each accumulation boundary: global-norm
 * clipping with {@code torch.nn.utils.clip_grad_norm_} semantics, and zeroing (DJL's PyTorch engine
 * accumulates gradients across backward calls and collectors until they are zeroed).
 */
public final class Gradients {

    /** The constant torch adds to the norm before dividing by it. */
    private static final float NORM_EPSILON = 1e-6f;

    private Gradients() {}

    /**
     * Returns the global L2 norm of all gradients (the norm of the per-tensor norms, in float32)
     * and, when {@code maxNorm > 0} and the coefficient {@code maxNorm / (norm + 1e-6)} is below 1,
     * scales every gradient in place by it. A non-finite norm leaves the gradients as they are.
     */
    public static float clipGlobalNorm(List<Parameter> params, double maxNorm) {
        if (params.isEmpty()) {
            return 0f;
        }
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            List<NDArray> grads = new ArrayList<>(params.size());
            NDList norms = new NDList(params.size());
            for (Parameter param : params) {
                NDArray grad = param.gradient();
                grads.add(grad);
                norms.add(grad.norm());
            }
            float total = NDArrays.stack(norms).norm().getFloat();
            if (maxNorm > 0 && Float.isFinite(total)) {
                // torch: max_norm / (total + 1e-6) evaluates as reciprocal(total + 1e-6) * max_norm
                float coefficient = (1f / (total + NORM_EPSILON)) * (float) maxNorm;
                if (coefficient < 1f) {
                    for (NDArray grad : grads) {
                        grad.muli(coefficient);
                    }
                }
            }
            return total;
        }
    }

    /**
     * Sets every parameter's gradient to zero in place (NaN and infinity included), ready for the
     * next accumulation.
     */
    public static void zero(List<Parameter> params) {
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDIndex all = new NDIndex("...");
            for (Parameter param : params) {
                param.gradient().set(all, 0f);
            }
        }
    }
}
