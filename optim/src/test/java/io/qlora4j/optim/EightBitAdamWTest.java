package io.qlora4j.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.qlora4j.quant.DynamicMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class EightBitAdamWTest extends EngineTest {

    private static final float[] SIGNED = DynamicMap.signed().values();
    private static final float[] UNSIGNED = DynamicMap.unsigned().values();

    @Test
    void tensorsBelow4096ElementsKeepFloat32StateAndStepExactlyAsAdamwTorch() {
        SyntheticRun eightBit = new SyntheticRun(manager, 4095, 4096);
        SyntheticRun torch = new SyntheticRun(manager, 4095, 4096);
        Map<String, StateTensor> state;
        try (AdamW adam = AdamW.builder().optOptim(Optim.ADAMW_8BIT).build();
                AdamW reference = AdamW.builder().build()) {
            eightBit.steps(adam, 0, 5);
            torch.steps(reference, 0, 5);
            state = adam.exportState();
        }
        assertEquals(
                List.of("layer0.lora_A.weight.step", "layer0.lora_A.weight.exp_avg",
                        "layer0.lora_A.weight.exp_avg_sq", "layer1.lora_A.weight.step",
                        "layer1.lora_A.weight.exp_avg.codes", "layer1.lora_A.weight.exp_avg_sq.codes",
                        "layer1.lora_A.weight.exp_avg.absmax",
                        "layer1.lora_A.weight.exp_avg_sq.absmax"),
                List.copyOf(state.keySet()));
        assertEquals(new Shape(16), state.get("layer1.lora_A.weight.exp_avg.absmax").shape());
        assertEquals(new Shape(4096), state.get("layer1.lora_A.weight.exp_avg_sq.codes").shape());
        assertArrayEquals(torch.values().get(0), eightBit.values().get(0));
        assertTrue(!java.util.Arrays.equals(torch.values().get(1), eightBit.values().get(1)));
    }

    @Test
    void secondStepUpdatesFromTheDecodedBlocksNotTheExactMoments() {
        int n = 4096;
        Random random = new Random(21);
        float[] initial = SyntheticRun.gaussian(random, n, 1.0);
        float[] g1 = SyntheticRun.gaussian(random, n, 0.1);
        float[] g2 = SyntheticRun.gaussian(random, n, 0.1);
        double lr = 0.01;
        double b1 = 0.9;
        double b2 = 0.999;
        double eps = 1e-8;
        Parameter param = Backprop.parameter(manager, "w", initial);
        Map<String, StateTensor> afterFirst;
        try (AdamW adam = AdamW.builder().optOptim(Optim.ADAMW_8BIT).build()) {
            Backprop.accumulate(param.value(), g1);
            adam.step(List.of(param), lr);
            afterFirst = adam.exportState();
            Gradients.zero(List.of(param));
            Backprop.accumulate(param.value(), g2);
            adam.step(List.of(param), lr);
        }
        float[] codes1 = afterFirst.get("w.exp_avg.codes").values();
        float[] absmax1 = afterFirst.get("w.exp_avg.absmax").values();
        float[] codes2 = afterFirst.get("w.exp_avg_sq.codes").values();
        float[] absmax2 = afterFirst.get("w.exp_avg_sq.absmax").values();
        float[] actual = param.value().toFloatArray();
        double worstExactMoments = 0;
        for (int block = 0; block < n / 256; block++) {
            double max1 = 0;
            double max2 = 0;
            for (int i = block * 256; i < (block + 1) * 256; i++) {
                max1 = Math.max(max1, Math.abs((1 - b1) * g1[i]));
                max2 = Math.max(max2, (1 - b2) * g1[i] * g1[i]);
            }
            // the first step's moments from zero state, coded with their block's absmax
            assertEquals(max1, absmax1[block], 1e-6 * max1, "block " + block);
            assertEquals(max2, absmax2[block], 1e-6 * max2, "block " + block);
        }
        for (int i = 0; i < n; i++) {
            double m1 = (1 - b1) * g1[i];
            double v1 = (1 - b2) * g1[i] * g1[i];
            double p1 = initial[i] - lr / (1 - b1) * m1 / (Math.sqrt(v1 / (1 - b2)) + eps);
            double decodedM = SIGNED[(int) codes1[i]] * absmax1[i / 256];
            double decodedV = UNSIGNED[(int) codes2[i]] * absmax2[i / 256];
            assertEquals(m1, decodedM, 0.0079 * absmax1[i / 256], "element " + i);
            double expected = adamStep(p1, decodedM, decodedV, g2[i], lr, b1, b2, eps);
            assertEquals(expected, actual[i], 2e-6, "element " + i);
            double fromExact = adamStep(p1, m1, v1, g2[i], lr, b1, b2, eps);
            worstExactMoments = Math.max(worstExactMoments, Math.abs(fromExact - actual[i]));
        }
        // the comparison tells decoded moments from exact ones
        assertTrue(worstExactMoments > 1e-5, "worst difference " + worstExactMoments);
    }

    /** The second AdamW update of torch's formula in float64, from moments m and v. */
    private static double adamStep(double p, double m, double v, double g, double lr, double b1,
            double b2, double eps) {
        double m2 = b1 * m + (1 - b1) * g;
        double v2 = b2 * v + (1 - b2) * g * g;
        return p - lr / (1 - b1 * b1) * m2 / (Math.sqrt(v2 / (1 - b2 * b2)) + eps);
    }

    @Test
    void eightBitEndsWithinTwoPercentOfFloat32LossOver200Steps() {
        float initial = trainLinearRegression(Optim.ADAMW_TORCH, 0);
        float loss32 = trainLinearRegression(Optim.ADAMW_TORCH, 200);
        float loss8 = trainLinearRegression(Optim.PAGED_ADAMW_8BIT, 200);
        assertTrue(loss32 < 0.1 * initial, "32-bit loss " + loss32 + " from " + initial);
        // the runs differ: the 8-bit state really is coarser
        assertTrue(loss8 != loss32);
        assertTrue(Math.abs(loss8 - loss32) <= 0.02 * loss32, loss8 + " vs " + loss32);
    }

    /**
     * Fits W [64, 64] (4096 elements: 8-bit state) to Y = X W* + noise over 512 samples by mean
     * squared error on minibatches of 32 in a fixed order, as training does; returns the loss on
     * all samples after {@code steps} steps.
     */
    private float trainLinearRegression(Optim optim, int steps) {
        Random random = new Random(77);
        int samples = 512;
        int batch = 32;
        NDArray x = manager.create(SyntheticRun.gaussian(random, samples * 64, 1.0), new Shape(samples, 64));
        NDArray target = manager.create(SyntheticRun.gaussian(random, 64 * 64, 0.1), new Shape(64, 64));
        NDArray y = x.dot(target)
                .add(manager.create(SyntheticRun.gaussian(random, samples * 64, 0.1), new Shape(samples, 64)));
        NDArray w = manager.zeros(new Shape(64, 64));
        w.setRequiresGradient(true);
        List<Parameter> params = List.of(new Parameter("w", w));
        try (AdamW adam = AdamW.builder().optOptim(optim).optPageSize(8 << 10).build()) {
            for (int step = 0; step < steps; step++) {
                Gradients.zero(params);
                try (NDScope scope = new NDScope();
                        GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    scope.suppressNotUsedWarning();
                    NDIndex rows = new NDIndex("{}:{}", step * batch % samples, step * batch % samples + batch);
                    collector.backward(x.get(rows).dot(w).sub(y.get(rows)).square().mean());
                }
                adam.step(params, 1e-2);
            }
        }
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            return x.dot(w.stopGradient()).sub(y).square().mean().getFloat();
        }
    }
}
