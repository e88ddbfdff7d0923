package io.qlora4j.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.BaseNDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

class AdamWTest extends EngineTest {

    /** torch.optim.AdamW as its documentation states the algorithm, in float64. */
    private static final class ReferenceAdamW {
        final double beta1;
        final double beta2;
        final double eps;
        final double weightDecay;
        final double[] p;
        final double[] m;
        final double[] v;
        int t;

        ReferenceAdamW(float[] initial, double beta1, double beta2, double eps, double wd) {
            this.beta1 = beta1;
            this.beta2 = beta2;
            this.eps = eps;
            this.weightDecay = wd;
            p = new double[initial.length];
            for (int i = 0; i < p.length; i++) {
                p[i] = initial[i];
            }
            m = new double[p.length];
            v = new double[p.length];
        }

        void step(float[] g, double lr) {
            t++;
            for (int i = 0; i < p.length; i++) {
                p[i] -= lr * weightDecay * p[i];
                m[i] = beta1 * m[i] + (1 - beta1) * g[i];
                v[i] = beta2 * v[i] + (1 - beta2) * g[i] * g[i];
                double mHat = m[i] / (1 - Math.pow(beta1, t));
                double vHat = v[i] / (1 - Math.pow(beta2, t));
                p[i] -= lr * mHat / (Math.sqrt(vHat) + eps);
            }
        }
    }

    private static float[] randomFloats(Random random, int n, double scale) {
        float[] out = new float[n];
        for (int i = 0; i < n; i++) {
            out[i] = (float) (random.nextGaussian() * scale);
        }
        return out;
    }

    private static void assertClose(double[] expected, float[] actual, double relative) {
        assertEquals(expected.length, actual.length);
        for (int i = 0; i < expected.length; i++) {
            double tolerance = relative * Math.max(Math.abs(expected[i]), 1e-30);
            assertEquals(expected[i], actual[i], tolerance, "element " + i);
        }
    }

    private static void runStep(AdamW adam, Parameter param, float[] grad, double lr) {
        Gradients.zero(List.of(param));
        Backprop.accumulate(param.value(), grad);
        adam.step(List.of(param), lr);
    }

    @Test
    void matchesFloat64AdamWWithBiasCorrectionAndWeightDecayOverSeveralSteps() {
        Random random = new Random(7);
        float[] initial = randomFloats(random, 9, 1.0);
        Parameter param = Backprop.parameter(manager, "layer.lora_A.weight", initial);
        ReferenceAdamW reference = new ReferenceAdamW(initial, 0.8, 0.95, 1e-6, 0.1);
        try (AdamW adam =
                AdamW.builder()
                        .optBeta1(0.8)
                        .optBeta2(0.95)
                        .optEpsilon(1e-6)
                        .optWeightDecay(0.1)
                        .build()) {
            for (int step = 0; step < 6; step++) {
                float[] grad = randomFloats(random, 9, Math.pow(10, step % 3 - 1));
                double lr = 0.01 * (6 - step) / 6.0;
                runStep(adam, param, grad, lr);
                reference.step(grad, lr);
                assertClose(reference.p, param.value().toFloatArray(), 1e-6);
            }
            Map<String, StateTensor> state = adam.exportState();
            assertClose(reference.m, state.get("layer.lora_A.weight.exp_avg").values(), 1e-6);
            assertClose(reference.v, state.get("layer.lora_A.weight.exp_avg_sq").values(), 1e-6);
            assertArrayEquals(
                    new float[] {6f}, state.get("layer.lora_A.weight.step").values());
        }
    }

    @Test
    void parameterWithALearningRateScaleStepsAsATorchGroupAtThatRateDecayIncluded() {
        Random random = new Random(9);
        float[] a = randomFloats(random, 7, 1.0);
        float[] b = randomFloats(random, 7, 1.0);
        Parameter loraA = Backprop.parameter(manager, "m.lora_A.weight", a);
        Parameter plain = Backprop.parameter(manager, "m.lora_B.weight", b);
        Parameter loraB = new Parameter(plain.name(), plain.value(), 16);
        ReferenceAdamW groupA = new ReferenceAdamW(a, 0.9, 0.999, 1e-8, 0.1);
        ReferenceAdamW groupB = new ReferenceAdamW(b, 0.9, 0.999, 1e-8, 0.1);
        try (AdamW adam = AdamW.builder().optWeightDecay(0.1).build()) {
            for (int step = 0; step < 4; step++) {
                float[] gradA = randomFloats(random, 7, 0.5);
                float[] gradB = randomFloats(random, 7, 0.5);
                double lr = 1e-3 * (4 - step);
                Gradients.zero(List.of(loraA, loraB));
                Backprop.accumulate(loraA.value(), gradA);
                Backprop.accumulate(loraB.value(), gradB);
                adam.step(List.of(loraA, loraB), lr);
                groupA.step(gradA, lr);
                groupB.step(gradB, lr * 16);
            }
            assertClose(groupA.p, loraA.value().toFloatArray(), 1e-6);
            assertClose(groupB.p, loraB.value().toFloatArray(), 1e-6);
        }
        assertThrows(IllegalArgumentException.class, () -> new Parameter("w", loraA.value(), Double.NaN));
    }

    @Test
    void defaultsAreTorchAndHfTrainerDefaults() {
        Random random = new Random(11);
        float[] initial = randomFloats(random, 5, 1.0);
        Parameter param = Backprop.parameter(manager, "w", initial);
        ReferenceAdamW reference = new ReferenceAdamW(initial, 0.9, 0.999, 1e-8, 0.0);
        try (AdamW adam = AdamW.builder().build()) {
            for (int step = 0; step < 3; step++) {
                float[] grad = randomFloats(random, 5, 0.3);
                runStep(adam, param, grad, 2e-4);
                reference.step(grad, 2e-4);
            }
            assertClose(reference.p, param.value().toFloatArray(), 1e-6);
        }
    }

    @Test
    void epsilonIsAddedOutsideTheSquareRoot() {
        // gradients of the order of eps: sqrt(v_hat) = |g| ~ eps, so where eps goes matters
        float[] grad = {1e-8f, -1e-8f, 3e-8f, 1e-9f};
        float[] initial = {1f, 1f, 1f, 1f};
        Parameter param = Backprop.parameter(manager, "w", initial);
        double lr = 0.1;
        try (AdamW adam = AdamW.builder().build()) {
            runStep(adam, param, grad, lr);
        }
        float[] updated = param.value().toFloatArray();
        for (int i = 0; i < grad.length; i++) {
            // first step: m_hat = g, v_hat = g^2
            double outside = 1 - lr * grad[i] / (Math.abs((double) grad[i]) + 1e-8);
            double inside = 1 - lr * grad[i] / Math.sqrt((double) grad[i] * grad[i] + 1e-8);
            assertEquals(outside, updated[i], 1e-6, "element " + i);
            assertTrue(Math.abs(outside - inside) > 1e-3, "the case discriminates");
        }
        // g = 1e-8 = eps: exactly half the full step
        assertEquals(1 - lr / 2, updated[0], 1e-6);
    }

    @Test
    void weightDecayAloneShrinksByLrTimesDecayWhenGradientAndStateAreZero() {
        float[] initial = {1f, -2f, 0.5f, 3f};
        Parameter param = Backprop.parameter(manager, "w", initial);
        double lr = 0.1;
        double weightDecay = 0.1;
        try (AdamW adam = AdamW.builder().optWeightDecay(weightDecay).build()) {
            runStep(adam, param, new float[4], lr);
        }
        float[] updated = param.value().toFloatArray();
        for (int i = 0; i < initial.length; i++) {
            assertEquals(initial[i] * (1 - lr * weightDecay), updated[i], 1e-7, "element " + i);
            // zero moments contribute exactly nothing: only the float32 decay product remains
            assertEquals(initial[i] * 0.99f, updated[i], 0f, "element " + i);
        }
    }

    @Test
    void weightDecayIsNotScaledByTheAdaptiveDenominator() {
        // first step from zero state: p1 = p0 (1 - lr wd) - lr g / (|g| + eps), whatever |g| is
        float[] initial = {2f, -3f, 2f, -3f};
        float[] grad = {0.5f, -0.25f, 500f, -250f};
        Parameter param = Backprop.parameter(manager, "w", initial);
        double lr = 0.01;
        double weightDecay = 0.1;
        try (AdamW adam = AdamW.builder().optWeightDecay(weightDecay).build()) {
            runStep(adam, param, grad, lr);
        }
        float[] updated = param.value().toFloatArray();
        for (int i = 0; i < initial.length; i++) {
            double expected =
                    initial[i] * (1 - lr * weightDecay)
                            - lr * grad[i] / (Math.abs((double) grad[i]) + 1e-8);
            assertEquals(expected, updated[i], 1e-6, "element " + i);
            // L2-in-the-gradient Adam would move by lr * sign(g + wd p) instead: 1.99, not 1.988
            double coupled = initial[i] - lr * Math.signum(grad[i] + weightDecay * initial[i]);
            assertTrue(Math.abs(coupled - updated[i]) > 1e-3, "element " + i);
        }
        // the same decay at gradient scales 1000x apart
        assertEquals(updated[0], updated[2], 1e-6);
        assertEquals(updated[1], updated[3], 1e-6);
    }

    @Test
    void exportedStateContinuesBitIdenticallyInANewOptimizer() {
        Random random = new Random(3);
        float[] initialA = randomFloats(random, 6, 1.0);
        float[] initialB = randomFloats(random, 4, 1.0);
        float[][][] grads = new float[6][][];
        for (int step = 0; step < 6; step++) {
            grads[step] =
                    new float[][] {randomFloats(random, 6, 0.1), randomFloats(random, 4, 2.0)};
        }
        LrSchedule schedule = LrSchedules.create("cosine", 1e-2, 2, 6);

        List<Parameter> straight = namedAB(initialA, initialB);
        Map<String, StateTensor> straightState;
        try (AdamW adam = AdamW.builder().optWeightDecay(0.01).build()) {
            runSteps(adam, straight, grads, schedule, 0, 6);
            straightState = adam.exportState();
        }

        List<Parameter> resumed = namedAB(initialA, initialB);
        Map<String, StateTensor> halfway;
        try (AdamW adam = AdamW.builder().optWeightDecay(0.01).build()) {
            runSteps(adam, resumed, grads, schedule, 0, 3);
            halfway = adam.exportState();
        }
        assertEquals(
                List.of(
                        "a.step", "a.exp_avg", "a.exp_avg_sq",
                        "b.step", "b.exp_avg", "b.exp_avg_sq"),
                List.copyOf(halfway.keySet()));
        assertArrayEquals(new float[] {3f}, halfway.get("a.step").values());
        assertEquals(new Shape(), halfway.get("a.step").shape());
        assertEquals(new Shape(4), halfway.get("b.exp_avg_sq").shape());
        try (AdamW adam = AdamW.builder().optWeightDecay(0.01).build()) {
            adam.importState(halfway);
            runSteps(adam, resumed, grads, schedule, 3, 6);
            Map<String, StateTensor> resumedState = adam.exportState();
            for (String key : straightState.keySet()) {
                assertArrayEquals(
                        straightState.get(key).values(), resumedState.get(key).values(), key);
            }
        }
        for (int i = 0; i < straight.size(); i++) {
            assertArrayEquals(
                    straight.get(i).value().toFloatArray(), resumed.get(i).value().toFloatArray());
        }
    }

    private List<Parameter> namedAB(float[] initialA, float[] initialB) {
        return List.of(
                Backprop.parameter(manager, "a", initialA),
                Backprop.parameter(manager, "b", initialB));
    }

    /** Runs updates {@code from} to {@code to - 1}, with {@code grads[step][i]} for param i. */
    private static void runSteps(
            AdamW adam, List<Parameter> params, float[][][] grads, LrSchedule lr, int from,
            int to) {
        for (int step = from; step < to; step++) {
            Gradients.zero(params);
            for (int i = 0; i < params.size(); i++) {
                Backprop.accumulate(params.get(i).value(), grads[step][i]);
            }
            adam.step(params, lr.lr(step));
        }
    }

    @Test
    void importRejectsIncompleteUnknownOrMisshapenState() {
        StateTensor scalarStep = new StateTensor(new Shape(), new float[] {2f});
        StateTensor three = new StateTensor(new Shape(3), new float[3]);
        try (AdamW adam = AdamW.builder().build()) {
            IllegalArgumentException missing =
                    assertThrows(
                            IllegalArgumentException.class,
                            () ->
                                    adam.importState(
                                            Map.of("w.step", scalarStep, "w.exp_avg", three)));
            assertTrue(missing.getMessage().contains("'w.exp_avg_sq'"), missing.getMessage());

            IllegalArgumentException unknown =
                    assertThrows(
                            IllegalArgumentException.class,
                            () -> adam.importState(Map.of("w.momentum", three)));
            assertTrue(unknown.getMessage().contains("'w.momentum'"), unknown.getMessage());

            IllegalArgumentException fractional =
                    assertThrows(
                            IllegalArgumentException.class,
                            () ->
                                    adam.importState(
                                            Map.of(
                                                    "w.step",
                                                    new StateTensor(
                                                            new Shape(), new float[] {1.5f}),
                                                    "w.exp_avg", three,
                                                    "w.exp_avg_sq", three)));
            assertTrue(fractional.getMessage().contains("'w.step'"), fractional.getMessage());

            adam.importState(
                    Map.of("w.step", scalarStep, "w.exp_avg", three, "w.exp_avg_sq", three));
            Parameter four = Backprop.parameter(manager, "w", new float[4]);
            Backprop.accumulate(four.value(), new float[4]);
            IllegalArgumentException shape =
                    assertThrows(
                            IllegalArgumentException.class, () -> adam.step(List.of(four), 0.1));
            assertTrue(shape.getMessage().contains("'w.exp_avg'"), shape.getMessage());
        }
    }

    @Test
    void stepRunsInsideAnOpenGradientCollector() {
        // in grad mode an in-place op on a leaf that requires grad fails; the step must not
        Parameter param = Backprop.parameter(manager, "w", new float[] {1f, 2f});
        Backprop.accumulate(param.value(), new float[] {1f, -1f});
        try (AdamW adam = AdamW.builder().build();
                GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            assertTrue(collector != null);
            adam.step(List.of(param), 0.1);
        }
        float[] updated = param.value().toFloatArray();
        // first step moves each weight by lr * g / (|g| + eps)
        assertEquals(1 - 0.1 / (1 + 1e-8), updated[0], 1e-6);
        assertEquals(2 + 0.1 / (1 + 1e-8), updated[1], 1e-6);
    }

    @Test
    void stepLeavesNoArraysBehindInTheParameterManager() {
        Parameter param = Backprop.parameter(manager, "w", new float[] {1f, 2f, 3f});
        try (AdamW adam = AdamW.builder().optWeightDecay(0.1).build()) {
            runStep(adam, param, new float[] {1f, 1f, 1f}, 0.1);
            int before = ((BaseNDManager) manager).getManagedArrays().size();
            for (int step = 0; step < 3; step++) {
                runStep(adam, param, new float[] {1f, -1f, 2f}, 0.1);
                Gradients.clipGlobalNorm(List.of(param), 1.0);
            }
            assertEquals(before, ((BaseNDManager) manager).getManagedArrays().size());
        }
    }

    @Test
    void builderRejectsSettingsTorchRejects() {
        assertThrows(IllegalArgumentException.class, () -> AdamW.builder().optBeta1(1.0).build());
        assertThrows(IllegalArgumentException.class, () -> AdamW.builder().optBeta2(-0.1).build());
        assertThrows(IllegalArgumentException.class, () -> AdamW.builder().optEpsilon(-1).build());
        assertThrows(
                IllegalArgumentException.class, () -> AdamW.builder().optWeightDecay(-0.1).build());
    }
}
