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
     *
     * <p>A power-of-two scaling (PEFT's default {@code lora_alpha = 2 r} gives 2) is applied to B, {@code [out, r]},
     * instead of to the update, {@code [tokens, out]}: multiplying by a power of two is exact, so every partial sum of
     * {@code (A x)^T (s B)} is s times that of {@code (A x)^T B}, and the update, its gradients and B's gradient are
     * the same bits (barring values below float32's normal range, 2^-126, which no trained adapter produces), for one
     * pass over the update less in each forward pass and in the backward pass.
     */
    @Override
    NDArray forward(BaseLinear base, AdapterTensors t, NDArray result, NDArray loraInput, boolean dropped) {
        NDArray update;
        try (NDScope scope = new NDScope()) {
            NDArray down = loraInput.matMul(t.a().transpose());
            if (isPowerOfTwo(t.scaling())) {
                update = down.matMul(GraphScalars.times(t.b(), t.scaling()).transpose());
            } else {
                update = down.matMul(t.b().transpose());
                update.muli(GraphScalars.of(update, t.scaling()));
            }
            NDScope.unregister(update);
        }
        result.addi(update);
        update.close();
        return result;
    }

    /** Whether {@code s}, as the float32 the product uses, is a power of two (positive). */
    static boolean isPowerOfTwo(double s) {
        float f = (float) s;
        return f > 0 && f == s && Math.scalb(1f, Math.getExponent(f)) == f;
    }

    @Override
    NDArray merge(NDArray weight, AdapterTensors t) {
        try (NDArray delta = t.delta()) {
            return weight.add(delta);
        }
    }
}
