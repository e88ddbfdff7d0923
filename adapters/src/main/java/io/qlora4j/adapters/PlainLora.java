package io.qlora4j.adapters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.GraphScalars;
import java.util.List;
import java.util.Map;

/**
 * LoRA itself (PEFT's vanilla path): {@code y = base(x) + scaling * B (A dropout(x))}, merged as
 * {@code W + scaling * B @ A}.
 */
final class PlainLora extends AdapterVariant {
    static final PlainLora INSTANCE = new PlainLora();

    private PlainLora() {}

    @Override
    public String name() {
        return "LoRA";
    }

    @Override
    public String peftFlag() {
        return null;
    }

    @Override
    List<String> extraNames() {
        return List.of();
    }

    @Override
    long[] extraShape(String name, long in, long out) {
        throw new IllegalArgumentException("LoRA has no tensor " + name);
    }

    @Override
    Map<String, NDArray> initExtras(BaseLinear base, AdapterTensors start, NDManager manager) {
        return Map.of();
    }

    /**
     * Scales the update and adds it to result in place: no further output-sized arrays (the same bits as the
     * out-of-place ops, and autograd allows both: no backward reads the product or the result), and a float16 result
     * takes the update as float16 (the in-place add casts it, and autograd records the cast).
     */
    @Override
    NDArray forward(BaseLinear base, AdapterTensors t, NDArray result, NDArray loraInput, boolean dropped) {
        NDArray update;
        try (NDScope scope = new NDScope()) {
            update = loraInput.matMul(t.a().transpose()).matMul(t.b().transpose());
            update.muli(GraphScalars.of(update, t.scaling()));
            NDScope.unregister(update);
        }
        result.addi(update);
        update.close();
        return result;
    }

    @Override
    NDArray merge(NDArray weight, AdapterTensors t) {
        try (NDArray delta = t.delta()) {
            return weight.add(delta);
        }
    }
}
