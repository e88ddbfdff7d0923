package io.qlora4j.adapters;

import ai.djl.ndarray.NDArray;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * The tensors of one adapted layer as a variant computes with them: {@code A [r, in]}, {@code B [out, r]}, the
 * variant's extra tensors by PEFT suffix, and the scaling of the LoRA path.
 */
record AdapterTensors(NDArray a, NDArray b, Map<String, NDArray> extras, double scaling) {

    /** The extra tensor {@code name}; absent is a programming error. */
    NDArray extra(String name) {
        NDArray t = extras.get(name);
        if (t == null) {
            throw new IllegalStateException("adapter has no " + name);
        }
        return t;
    }

    /** Views of the same tensors that record no graph: for norms, merges and input gradients. */
    AdapterTensors detached() {
        Map<String, NDArray> views = new LinkedHashMap<>();
        extras.forEach((name, t) -> views.put(name, t.stopGradient()));
        return new AdapterTensors(a.stopGradient(), b.stopGradient(), views, scaling);
    }

    /** {@code scaling * B @ A} {@code [out, in]}, from detached views, without a graph. */
    NDArray delta() {
        return b.stopGradient().matMul(a.stopGradient()).muli((float) scaling);
    }
}
