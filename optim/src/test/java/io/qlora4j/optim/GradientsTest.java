package io.qlora4j.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.index.NDIndex;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class GradientsTest extends EngineTest {

    private Parameter withGradient(String name, float[] grad) {
        Parameter param = Backprop.parameter(manager, name, new float[grad.length]);
        Backprop.accumulate(param.value(), grad);
        return param;
    }

    private static float[] gradientOf(Parameter param) {
        return param.value().getGradient().toFloatArray();
    }

    private static double globalNorm(float[]... grads) {
        double sum = 0;
        for (float[] grad : grads) {
            for (float g : grad) {
                sum += (double) g * g;
            }
        }
        return Math.sqrt(sum);
    }

    @Test
    void globalNormIsTheNormOfAllGradientsTogether() {
        // |(3, 4)| = 5 and |(12)| = 12 give sqrt(25 + 144) = 13
        List<Parameter> params =
                List.of(
                        withGradient("a", new float[] {3f, 4f}),
                        withGradient("b", new float[] {12f}));
        assertEquals(13f, Gradients.clipGlobalNorm(params, 0), 0f);
    }

    @Test
    void globalNormOfManyTensorsMatchesFloat64() {
        Random random = new Random(5);
        float[][] grads = new float[3][];
        Parameter[] params = new Parameter[3];
        for (int i = 0; i < grads.length; i++) {
            grads[i] = new float[10 + 37 * i];
            for (int j = 0; j < grads[i].length; j++) {
                grads[i][j] = (float) (random.nextGaussian() * Math.pow(10, i - 1));
            }
            params[i] = withGradient("p" + i, grads[i]);
        }
        float norm = Gradients.clipGlobalNorm(List.of(params), 0);
        double expected = globalNorm(grads);
        assertEquals(expected, norm, 1e-6 * expected);
    }

    @Test
    void normBelowMaxLeavesGradientsBitIdentical() {
        float[] gradA = {0.1f, -0.2f, 0.3f};
        float[] gradB = {-0.05f};
        Parameter a = withGradient("a", gradA);
        Parameter b = withGradient("b", gradB);
        float norm = Gradients.clipGlobalNorm(List.of(a, b), 1.0);
        assertEquals(globalNorm(gradA, gradB), norm, 1e-7);
        assertArrayEquals(gradA, gradientOf(a));
        assertArrayEquals(gradB, gradientOf(b));
    }

    @Test
    void normAboveMaxScalesEveryGradientByMaxOverNormPlusEpsilon() {
        float[] gradA = {3f, -4f, 1.5f};
        float[] gradB = {12f, 0.25f};
        Parameter a = withGradient("a", gradA);
        Parameter b = withGradient("b", gradB);
        double maxNorm = 0.3;
        float norm = Gradients.clipGlobalNorm(List.of(a, b), maxNorm);
        double expectedNorm = globalNorm(gradA, gradB);
        assertEquals(expectedNorm, norm, 1e-6 * expectedNorm, "returns the norm before clipping");
        double coefficient = maxNorm / (expectedNorm + 1e-6);
        float[] clippedA = gradientOf(a);
        float[] clippedB = gradientOf(b);
        assertScaled(gradA, coefficient, clippedA);
        assertScaled(gradB, coefficient, clippedB);
        assertEquals(maxNorm, globalNorm(clippedA, clippedB), 1e-6);
    }

    @Test
    void epsilonInTheCoefficientMattersForTinyNorms() {
        // norm 2e-6 and max 1e-6: the coefficient is 1e-6 / (2e-6 + 1e-6) = 1/3, not 1/2
        float[] grad = {1.2e-6f, -1.6e-6f};
        Parameter a = withGradient("a", grad);
        Gradients.clipGlobalNorm(List.of(a), 1e-6);
        assertScaled(grad, 1.0 / 3, gradientOf(a));
    }

    private static void assertScaled(float[] original, double coefficient, float[] scaled) {
        for (int i = 0; i < original.length; i++) {
            double expected = original[i] * coefficient;
            assertEquals(expected, scaled[i], 1e-6 * Math.abs(expected), "element " + i);
        }
    }

    @Test
    void nonPositiveMaxNormDisablesClippingButStillReportsTheNorm() {
        float[] grad = {30f, 40f};
        Parameter a = withGradient("a", grad);
        assertEquals(50f, Gradients.clipGlobalNorm(List.of(a), 0), 0f);
        assertEquals(50f, Gradients.clipGlobalNorm(List.of(a), -1), 0f);
        assertArrayEquals(grad, gradientOf(a));
    }

    @Test
    void gradientsAccumulateAcrossBackwardCallsUntilZeroed() {
        Parameter a = withGradient("a", new float[] {1f, 2f});
        Backprop.accumulate(a.value(), new float[] {10f, 20f});
        assertArrayEquals(new float[] {11f, 22f}, gradientOf(a));

        try (NDArray grad = a.value().getGradient()) {
            grad.set(new NDIndex(0), Float.NaN);
        }
        Gradients.zero(List.of(a));
        assertArrayEquals(new float[] {0f, 0f}, gradientOf(a), "NaN is zeroed too");

        Backprop.accumulate(a.value(), new float[] {5f, -5f});
        assertArrayEquals(new float[] {5f, -5f}, gradientOf(a));
    }
}
