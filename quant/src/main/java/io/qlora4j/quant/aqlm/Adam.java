package io.qlora4j.quant.aqlm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import java.util.List;

/**
 * torch's Adam (eps 1e-8, no weight decay), optionally with AMSGrad, over arrays that require a gradient: what the
 * AQLM repository trains codebooks and scales with (betas (0, 0.95) with AMSGrad per layer; (0.9, 0.95) in the
 * block fine-tune). Each update reads and zeroes the gradients.
 */
final class Adam {
    private final List<NDArray> params;
    private final double beta1;
    private final double beta2;
    private final boolean amsgrad;
    private final NDArray[] first;
    private final NDArray[] second;
    private final NDArray[] maxSecond;
    private int steps;

    Adam(NDManager manager, List<NDArray> params, double beta1, double beta2, boolean amsgrad) {
        this.params = List.copyOf(params);
        this.beta1 = beta1;
        this.beta2 = beta2;
        this.amsgrad = amsgrad;
        this.first = new NDArray[params.size()];
        this.second = new NDArray[params.size()];
        this.maxSecond = new NDArray[params.size()];
        for (int i = 0; i < params.size(); i++) {
            first[i] = manager.zeros(params.get(i).getShape());
            second[i] = manager.zeros(params.get(i).getShape());
            maxSecond[i] = amsgrad ? manager.zeros(params.get(i).getShape()) : null;
        }
    }

    /** One step of learning rate {@code lr}. */
    void update(double lr) {
        steps++;
        double correction1 = 1 - Math.pow(beta1, steps);
        double correction2 = Math.sqrt(1 - Math.pow(beta2, steps));
        for (int i = 0; i < params.size(); i++) {
            try (NDScope scope = new NDScope()) {
                NDArray g = params.get(i).getGradient();
                first[i].muli((float) beta1).addi(g.mul((float) (1 - beta1)));
                second[i].muli((float) beta2).addi(g.square().muli((float) (1 - beta2)));
                NDArray v = second[i];
                if (amsgrad) {
                    maxSecond[i].set(new NDIndex("..."), NDArrays.maximum(maxSecond[i], second[i]));
                    v = maxSecond[i];
                }
                NDArray denom = v.sqrt().divi((float) correction2).addi(1e-8f);
                params.get(i).stopGradient().subi(first[i].div(denom).muli((float) (lr / correction1)));
                g.set(new NDIndex("..."), 0f);
            }
        }
    }
}
