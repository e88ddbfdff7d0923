package io.qlora4j.optim;

import ai.djl.ndarray.NDManager;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Test helper: named parameters of chosen sizes with seeded values, stepped with gradients that
 * are a fixed seeded function of (step, parameter), so two runs see exactly the same gradients.
 */
final class SyntheticRun {

    private final List<Parameter> params = new ArrayList<>();

    SyntheticRun(NDManager manager, int... sizes) {
        for (int p = 0; p < sizes.length; p++) {
            params.add(Backprop.parameter(manager, "layer" + p + ".lora_A.weight",
                    gaussian(new Random(1000 + p), sizes[p], 0.5)));
        }
    }

    List<Parameter> params() {
        return params;
    }

    /** Runs optimizer steps {@code from} to {@code to - 1} at a cosine-like varying rate. */
    void steps(AdamW adam, int from, int to) {
        for (int step = from; step < to; step++) {
            Gradients.zero(params);
            for (int p = 0; p < params.size(); p++) {
                Parameter param = params.get(p);
                // gradient scales 1e-3 .. 1: the 8-bit blocks see a wide range of magnitudes
                float[] grad = gradient(step, p, Math.toIntExact(param.value().size()));
                Backprop.accumulate(param.value(), grad);
            }
            adam.step(params, 1e-2 * (1 + Math.cos(step * 0.1)) / 2);
        }
    }

    /** The gradient of parameter {@code p} at {@code step}. */
    static float[] gradient(int step, int p, int size) {
        return gaussian(new Random(31L * step + p), size, Math.pow(10, -(p % 4)));
    }

    /** The parameters' values, in order. */
    List<float[]> values() {
        List<float[]> out = new ArrayList<>();
        params.forEach(param -> out.add(param.value().toFloatArray()));
        return out;
    }

    static float[] gaussian(Random random, int n, double scale) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (random.nextGaussian() * scale);
        }
        return out;
    }
}
