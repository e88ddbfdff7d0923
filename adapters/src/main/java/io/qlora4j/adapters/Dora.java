package io.qlora4j.adapters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.GraphCasts;
import io.qlora4j.model.GraphScalars;
import java.util.List;
import java.util.Map;

/**
 * DoRA, weight-decomposed LoRA, as PEFT's {@code DoraLinearLayer} computes it: a trained magnitude {@code m [out]}
 * rescales each output row of {@code W + s B A} to that length. With {@code n = ||W + s B A||} per output row
 * (the norm over the input dimension, of the dequantized weight and a detached {@code B A}, itself detached, as the
 * DoRA paper's section 4.3 asks) and {@code f = m / n}:
 *
 * <pre>
 * y = result + (f - 1) * base + f * s * B (A x')
 * </pre>
 *
 * where {@code result = W x + b}, and in evaluation or without dropout {@code x' = x} and {@code base = result - b},
 * so {@code y = f (W + s B A) x + b}; in training with dropout {@code x' = dropout(x)} and {@code base = W x'} is
 * computed again, so the undropped base output stays and only the correction sees the dropped input. {@code m}
 * starts as {@code ||W + s B A||}, which is {@code ||W||} for LoRA's B = 0. Merged: {@code W' = f (W + s B A)}, the
 * bias untouched. Works over every base format through {@link BaseLinear#withWeight} (QDoRA over NF4).
 */
final class Dora extends AdapterVariant {
    static final Dora INSTANCE = new Dora();
    /** PEFT's saved key suffix of the magnitude, {@code [out]}. */
    static final String MAGNITUDE = "lora_magnitude_vector";

    private Dora() {}

    @Override
    public String name() {
        return "DoRA";
    }

    @Override
    public String peftFlag() {
        return "use_dora";
    }

    @Override
    List<String> extraNames() {
        return List.of(MAGNITUDE);
    }

    @Override
    long[] extraShape(String name, long in, long out) {
        return new long[] {out};
    }

    @Override
    Map<String, NDArray> initExtras(BaseLinear base, AdapterTensors start, NDManager manager) {
        float[] norms = base.withWeight(DataType.FLOAT32, w -> {
            try (NDArray n = weightNorm(w, start)) {
                return n.toFloatArray();
            }
        });
        return Map.of(MAGNITUDE, manager.create(norms, new Shape(norms.length)));
    }

    @Override
    NDArray forward(BaseLinear base, AdapterTensors t, NDArray result, NDArray loraInput, boolean dropped) {
        try (NDScope scope = new NDScope()) {
            NDArray norm = base.withWeight(DataType.FLOAT32, w -> weightNorm(w, t));
            NDArray factor = t.extra(MAGNITUDE).div(norm);
            NDArray lora = GraphScalars.times(loraInput.matMul(t.a().transpose()).matMul(t.b().transpose()), t.scaling());
            NDArray baseOutput;
            if (dropped) {
                baseOutput = base.withWeight(DataType.FLOAT32, w -> loraInput.matMul(w.transpose()));
            } else {
                baseOutput = base.bias() == null ? result : result.sub(base.bias());
            }
            NDArray update = factor.sub(GraphScalars.of(factor, 1)).mul(baseOutput).add(factor.mul(lora));
            NDArray y = GraphCasts.to(result.add(update), result.getDataType());
            NDScope.unregister(y);
            return y;
        }
    }

    @Override
    NDArray merge(NDArray weight, AdapterTensors t) {
        try (NDScope scope = new NDScope()) {
            AdapterTensors d = t.detached();
            NDArray combined = weight.add(d.delta());
            NDArray factor = d.extra(MAGNITUDE).div(rowNorms(combined)).reshape(-1, 1);
            NDArray merged = combined.mul(factor);
            NDScope.unregister(merged);
            return merged;
        }
    }

    /** {@code ||W + s B A||} per output row, from detached A and B: no graph. */
    private static NDArray weightNorm(NDArray weight, AdapterTensors t) {
        try (NDArray delta = t.delta(); NDArray combined = weight.add(delta)) {
            return rowNorms(combined);
        }
    }

    /** The Euclidean norm of each row of {@code m [out, in]}. */
    private static NDArray rowNorms(NDArray m) {
        try (NDArray squares = m.square(); NDArray sums = squares.sum(new int[] {1})) {
            return sums.sqrt();
        }
    }
}
