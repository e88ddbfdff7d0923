package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.quant.HalfFloats;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * {@link LoraLinear} against float64 closed forms: {@code y = x W^T + s x A^T B^T}, and for
 * {@code L = sum(y * R)}: {@code dL/dB = s R^T (x A^T)}, {@code dL/dA = s (R B)^T x}, {@code dL/dx = R W + s R B A}.
 */
class LoraLinearTest {
    private static final int N = 6; // rows of x: [2, 3, in]
    private static final int IN = 12;
    private static final int OUT = 10;
    private static final int R = 4;

    @Test
    void forwardAddsScaledLowRankUpdateToBaseWithAndWithoutRslora() {
        Values v = Values.random(1);
        for (boolean rslora : new boolean[] {false, true}) {
            LoraSettings settings = new LoraSettings(R, 6, 0, rslora, List.of("q_proj"));
            assertEquals(rslora ? 3.0 : 1.5, settings.scaling(), 1e-15);
            try (NDManager m = NDManager.newBaseManager()) {
                LoraLinear lora = layer(m, v, settings, DataType.FLOAT32);
                float[] y = lora.forward(m.create(v.x(), new Shape(2, 3, IN))).toFloatArray();
                Fixtures.assertClose(v.expectedOutput(settings.scaling()), y, 1e-6);
            }
        }
    }

    @Test
    void gradientsReachAAndBAndTheInputButNotTheBaseAndInputGradientAgrees() {
        Values v = Values.random(2);
        LoraSettings settings = new LoraSettings(R, 8, 0, false, List.of("q_proj"));
        try (NDManager m = NDManager.newBaseManager()) {
            LoraLinear lora = layer(m, v, settings, DataType.FLOAT32);
            NDArray input = m.create(v.x(), new Shape(2, 3, IN));
            input.setRequiresGradient(true);
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                collector.backward(lora.forward(input).mul(m.create(v.u(), new Shape(2, 3, OUT))).sum());
            }
            double[][] expected = v.expectedGradients(settings.scaling());
            Fixtures.assertClose(expected[0], lora.loraA().getGradient().toFloatArray(), 1e-6);
            Fixtures.assertClose(expected[1], lora.loraB().getGradient().toFloatArray(), 1e-6);
            Fixtures.assertClose(expected[2], input.getGradient().toFloatArray(), 1e-6);
            assertFalse(((DenseLinear) lora.base()).weight().hasGradient(), "the frozen weight must not collect gradients");
            // the same input gradient without a graph, as a loss head computes it
            Fixtures.assertClose(expected[2], lora.inputGradient(m.create(v.u(), new Shape(2, 3, OUT))).toFloatArray(),
                    1e-6);
        }
    }

    @Test
    void aPowerOfTwoScalingGivesTheBitsOfScalingTheUpdateForOutputAndGradients() {
        Values v = Values.random(7);
        for (int alpha : new int[] {8, 16, 2}) { // scaling 2, 4 and 0.5 (r 4)
            LoraSettings settings = new LoraSettings(R, alpha, 0, false, List.of("q_proj"));
            assertTrue(PlainLora.isPowerOfTwo(settings.scaling()), "alpha " + alpha);
            try (NDManager m = NDManager.newBaseManager()) {
                LoraLinear lora = layer(m, v, settings, DataType.FLOAT32);
                NDArray input = m.create(v.x(), new Shape(2, 3, IN));
                NDArray upstream = m.create(v.u(), new Shape(2, 3, OUT));
                float[] y;
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDArray out = lora.forward(input);
                    y = out.toFloatArray();
                    collector.backward(out.mul(upstream).sum());
                }
                float[] da = lora.loraA().getGradient().toFloatArray();
                float[] db = lora.loraB().getGradient().toFloatArray();
                // the update scaled after its product, as PEFT writes it, on copies of the same tensors
                NDArray a = m.create(v.a(), new Shape(R, IN));
                NDArray b = m.create(v.b(), new Shape(OUT, R));
                a.setRequiresGradient(true);
                b.setRequiresGradient(true);
                float[] expected;
                try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                    NDArray update = input.matMul(a.transpose()).matMul(b.transpose());
                    NDArray out = input.matMul(m.create(v.w(), new Shape(OUT, IN)).transpose())
                            .add(update.mul(m.full(new Shape(), (float) settings.scaling())));
                    expected = out.toFloatArray();
                    collector.backward(out.mul(upstream).sum());
                }
                assertArrayEquals(expected, y, "alpha " + alpha + ": output");
                assertArrayEquals(a.getGradient().toFloatArray(), da, "alpha " + alpha + ": dL/dA");
                assertArrayEquals(b.getGradient().toFloatArray(), db, "alpha " + alpha + ": dL/dB");
            }
        }
        assertFalse(PlainLora.isPowerOfTwo(1.5));
        assertFalse(PlainLora.isPowerOfTwo(32 / Math.sqrt(8))); // rsLoRA at r 8
        assertFalse(PlainLora.isPowerOfTwo(0.1)); // not a float32 either
    }

    @Test
    void float16InputComputesLoraInFloat32AndReturnsFloat16WithGradients() {
        Values v = Values.random(3).withHalfExactInputs();
        LoraSettings settings = new LoraSettings(R, 8, 0, false, List.of("q_proj"));
        try (NDManager m = NDManager.newBaseManager()) {
            LoraLinear lora = layer(m, v, settings, DataType.FLOAT16);
            NDArray input = m.create(v.x(), new Shape(2, 3, IN)).toType(DataType.FLOAT16, false);
            input.setRequiresGradient(true);
            NDArray y;
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                y = lora.forward(input);
                NDArray r = m.create(v.u(), new Shape(2, 3, OUT)).toType(DataType.FLOAT16, false);
                collector.backward(y.mul(r).sum());
            }
            assertEquals(DataType.FLOAT16, y.getDataType());
            float[] y32 = y.toType(DataType.FLOAT32, false).toFloatArray();
            Fixtures.assertClose(v.expectedOutput(settings.scaling()), y32, 2e-3);
            double[][] expected = v.expectedGradients(settings.scaling());
            // The LoRA path sees float16-exact x and upstream values and computes in float32: near float32 accuracy.
            assertEquals(DataType.FLOAT32, lora.loraA().getGradient().getDataType());
            Fixtures.assertClose(expected[0], lora.loraA().getGradient().toFloatArray(), 1e-5);
            Fixtures.assertClose(expected[1], lora.loraB().getGradient().toFloatArray(), 1e-5);
            Fixtures.assertClose(expected[2], input.getGradient().toType(DataType.FLOAT32, false).toFloatArray(), 2e-3);
        }
    }

    @Test
    void dropoutZeroesAboutPOfTheInputsScalesTheRestAndOnlyWhileTraining() {
        int n = 64;
        int rows = 50;
        float[] x = Fixtures.gaussian(new Random(4), rows * n);
        LoraSettings settings = new LoraSettings(n, n, 0.25, false, List.of("q_proj")); // scaling 1
        try (NDManager m = NDManager.newBaseManager()) {
            LoraLinear lora = identityUpdate(m, n, settings, 0);
            NDArray input = m.create(x, new Shape(rows, n));
            assertArrayEquals(x, lora.forward(input).toFloatArray(), 1e-6f, "no dropout outside training");
            lora.setTraining(true);
            lora.setDropoutSeed(42);
            float[] y = lora.forward(input).toFloatArray();
            int zeros = 0;
            for (int i = 0; i < x.length; i++) {
                if (y[i] == 0) {
                    zeros++;
                } else {
                    assertEquals(x[i] / 0.75, y[i], 1e-5 * Math.abs(x[i]) + 1e-7, "kept inputs are scaled by 1/(1-p)");
                }
            }
            // 3200 Bernoulli(0.25) draws: standard deviation of the fraction is 0.0077.
            assertEquals(0.25, zeros / (double) x.length, 0.03);
        }
    }

    @Test
    void dropoutMaskDependsOnlyOnSeedAndModuleSoRecomputationRepeatsIt() {
        int n = 32;
        float[] x = Fixtures.gaussian(new Random(5), 8 * n);
        LoraSettings settings = new LoraSettings(n, n, 0.5, false, List.of("q_proj"));
        try (NDManager m = NDManager.newBaseManager()) {
            LoraLinear first = identityUpdate(m, n, settings, 0);
            LoraLinear second = identityUpdate(m, n, settings, 1);
            NDArray input = m.create(x, new Shape(8, n));
            for (LoraLinear l : List.of(first, second)) {
                l.setTraining(true);
                l.setDropoutSeed(7);
            }
            float[] y1 = first.forward(input).toFloatArray();
            Engine.getInstance().setRandomSeed(123); // other draws in between must not matter
            m.randomUniform(0f, 1f, new Shape(1000));
            assertArrayEquals(y1, first.forward(input).toFloatArray(), "same seed, same module: same mask");
            assertFalse(Arrays.equals(y1, second.forward(input).toFloatArray()), "another module draws another mask");
            first.setDropoutSeed(8);
            assertFalse(Arrays.equals(y1, first.forward(input).toFloatArray()), "another seed draws another mask");
        }
    }

    @Test
    void forwardLeavesNoArraysBehindInTheParameterOrInputManager() {
        int n = 16;
        LoraSettings settings = new LoraSettings(n, n, 0.5, false, List.of("q_proj"));
        try (NDManager parameters = NDManager.newBaseManager(); NDManager step = NDManager.newBaseManager()) {
            LoraLinear lora = identityUpdate(parameters, n, settings, 0);
            lora.setTraining(true);
            NDArray input = step.create(Fixtures.gaussian(new Random(7), 4 * n), new Shape(4, n));
            int beforeParameters = parameters.getManagedArrays().size();
            int beforeStep = step.getManagedArrays().size();
            for (int i = 0; i < 3; i++) {
                lora.forward(input).close();
            }
            assertEquals(beforeParameters, parameters.getManagedArrays().size());
            assertEquals(beforeStep, step.getManagedArrays().size());
        }
    }

    @Test
    void reportsBaseShapeAndCountsLoraBytes() {
        try (NDManager m = NDManager.newBaseManager()) {
            LoraLinear lora = layer(m, Values.random(6), new LoraSettings(R, 8, 0, false, List.of("q_proj")), DataType.FLOAT32);
            assertEquals(IN, lora.inFeatures());
            assertEquals(OUT, lora.outFeatures());
            assertEquals(4L * (OUT * IN + R * IN + OUT * R), lora.bytes());
        }
    }
    /** A layer over a zero base whose update is {@code x * mask / (1 - p)} exactly: A = B = identity, scaling 1. */
    private static LoraLinear identityUpdate(NDManager m, int n, LoraSettings settings, int moduleIndex) {
        return new LoraLinear(new DenseLinear(m.zeros(new Shape(n, n)), null), m.eye(n), m.eye(n), Map.of(), settings,
                moduleIndex);
    }

    private static LoraLinear layer(NDManager m, Values v, LoraSettings settings, DataType baseType) {
        DenseLinear base = new DenseLinear(m.create(v.w(), new Shape(OUT, IN)).toType(baseType, false), null);
        NDArray loraA = m.create(v.a(), new Shape(R, IN));
        NDArray loraB = m.create(v.b(), new Shape(OUT, R));
        loraA.setRequiresGradient(true);
        loraB.setRequiresGradient(true);
        return new LoraLinear(base, loraA, loraB, Map.of(), settings, 0);
    }

    /** Inputs x [N, IN], weights W [OUT, IN], A [R, IN], B [OUT, R] and an upstream gradient u [N, OUT]. */
    private record Values(float[] x, float[] w, float[] a, float[] b, float[] u) {
        static Values random(long seed) {
            Random random = new Random(seed);
            return new Values(Fixtures.gaussian(random, N * IN), Fixtures.gaussian(random, OUT * IN),
                    Fixtures.gaussian(random, R * IN), Fixtures.gaussian(random, OUT * R), Fixtures.gaussian(random, N * OUT));
        }

        /** x, W and u rounded to float16 values, so a float16 layer sees them exactly. */
        Values withHalfExactInputs() {
            return new Values(toHalfValues(x), toHalfValues(w), a, b, toHalfValues(u));
        }

        /** {@code x W^T + s (x A^T) B^T} in float64, rows of x flattened. */
        double[] expectedOutput(double s) {
            double[] y = new double[N * OUT];
            for (int n = 0; n < N; n++) {
                double[] ax = new double[R];
                for (int r = 0; r < R; r++) {
                    for (int j = 0; j < IN; j++) {
                        ax[r] += (double) a[r * IN + j] * x[n * IN + j];
                    }
                }
                for (int o = 0; o < OUT; o++) {
                    for (int j = 0; j < IN; j++) {
                        y[n * OUT + o] += (double) w[o * IN + j] * x[n * IN + j];
                    }
                    for (int r = 0; r < R; r++) {
                        y[n * OUT + o] += s * b[o * R + r] * ax[r];
                    }
                }
            }
            return y;
        }

        /** {dL/dA, dL/dB, dL/dx} of {@code L = sum(y * u)} in float64. */
        double[][] expectedGradients(double s) {
            double[] da = new double[R * IN];
            double[] db = new double[OUT * R];
            double[] dx = new double[N * IN];
            for (int n = 0; n < N; n++) {
                double[] ax = new double[R];
                double[] ub = new double[R]; // (u_n B)[r]
                for (int r = 0; r < R; r++) {
                    for (int j = 0; j < IN; j++) {
                        ax[r] += (double) a[r * IN + j] * x[n * IN + j];
                    }
                    for (int o = 0; o < OUT; o++) {
                        ub[r] += (double) u[n * OUT + o] * b[o * R + r];
                    }
                }
                for (int o = 0; o < OUT; o++) {
                    for (int r = 0; r < R; r++) {
                        db[o * R + r] += s * u[n * OUT + o] * ax[r];
                    }
                    for (int j = 0; j < IN; j++) {
                        dx[n * IN + j] += (double) u[n * OUT + o] * w[o * IN + j];
                    }
                }
                for (int r = 0; r < R; r++) {
                    for (int j = 0; j < IN; j++) {
                        da[r * IN + j] += s * ub[r] * x[n * IN + j];
                        dx[n * IN + j] += s * ub[r] * a[r * IN + j];
                    }
                }
            }
            return new double[][] {da, db, dx};
        }
    }

    private static float[] toHalfValues(float[] v) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = HalfFloats.f16ToFloat(HalfFloats.floatToF16(v[i]));
        }
        return out;
    }
}
