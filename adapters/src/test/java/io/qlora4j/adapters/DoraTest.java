package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.quant.BlockwiseQuantizer;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * DoRA ({@link Dora}) against float64 closed forms written from the DoRA paper and PEFT's
 * {@code DoraLinearLayer.forward}: {@code n = ||W + s B A||} per output row, {@code f = m / n} (n detached),
 * {@code y = f (W + s B A) x + b} in evaluation, and with dropout {@code y = W x + b + (f - 1) W x' + f s B A x'}
 * for the dropped input {@code x'}; for {@code L = sum(y * u)} in evaluation:
 * {@code dL/dm_o = sum_n u[n,o] ((W + s B A) x_n)_o / n_o}, {@code dL/dB = s (u f)^T (A x)},
 * {@code dL/dA = s ((u f) B)^T x}, {@code dL/dx = (u f) (W + s B A)}.
 */
class DoraTest {
    private static final int N = 6;
    private static final int IN = 64;
    private static final int OUT = 12;
    private static final int R = 3;
    private static final LoraSettings SETTINGS = new LoraSettings(R, 6, 0, false, List.of("q_proj"))
            .withVariant(Dora.INSTANCE);

    @Test
    void evaluationForwardIsMagnitudeOverRowNormTimesWeightPlusUpdateOverDenseAndNf4Bases() {
        Values v = Values.random(1);
        BlockwiseQuantizer nf4 = BlockwiseQuantizer.builder().build();
        float[] dequantized = nf4.dequantize(nf4.quantize(v.w, new long[] {OUT, IN}));
        try (NDManager m = NDManager.newBaseManager()) {
            BaseLinear dense = new DenseLinear(m.create(v.w, new Shape(OUT, IN)), m.create(v.bias));
            BaseLinear quantized = QuantizedLinear.upload(nf4.quantize(v.w, new long[] {OUT, IN}), m.create(v.bias), m);
            for (BaseLinear base : List.of(dense, quantized)) {
                float[] w = base == dense ? v.w : dequantized;
                float[] y = layer(m, v, base).forward(m.create(v.x, new Shape(2, 3, IN))).toFloatArray();
                Fixtures.assertClose(v.expectedOutput(w, SETTINGS.scaling()), y, 1e-5);
            }
        }
    }

    @Test
    void unmergedForwardEqualsTheForwardOfTheMergedWeightWithin1e5() {
        Values v = Values.random(2);
        try (NDManager m = NDManager.newBaseManager()) {
            LoraLinear dora = layer(m, v, new DenseLinear(m.create(v.w, new Shape(OUT, IN)), m.create(v.bias)));
            NDArray merged = Dora.INSTANCE.merge(m.create(v.w, new Shape(OUT, IN)), dora.adapterTensors());
            NDArray x = m.create(v.x, new Shape(2, 3, IN));
            float[] unmerged = dora.forward(x).toFloatArray();
            float[] fromMerged = new DenseLinear(merged, m.create(v.bias)).forward(x).toFloatArray();
            assertTrue(ExportFixtures.maxDifference(unmerged, fromMerged) <= 1e-5,
                    "max difference " + ExportFixtures.maxDifference(unmerged, fromMerged));
            assertTrue(ExportFixtures.maxAbs(unmerged) > 1, "outputs of a meaningful size");
        }
    }

    @Test
    void gradientsReachMagnitudeAAndBThroughADetachedNormAndInputGradientAgrees() {
        Values v = Values.random(3);
        try (NDManager m = NDManager.newBaseManager()) {
            LoraLinear dora = layer(m, v, new DenseLinear(m.create(v.w, new Shape(OUT, IN)), m.create(v.bias)));
            NDArray input = m.create(v.x, new Shape(2, 3, IN));
            input.setRequiresGradient(true);
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                collector.backward(dora.forward(input).mul(m.create(v.u, new Shape(2, 3, OUT))).sum());
            }
            double[][] expected = v.expectedGradients(SETTINGS.scaling());
            Fixtures.assertClose(expected[0], dora.extras().get(Dora.MAGNITUDE).getGradient().toFloatArray(), 1e-5);
            Fixtures.assertClose(expected[1], dora.loraA().getGradient().toFloatArray(), 1e-5);
            Fixtures.assertClose(expected[2], dora.loraB().getGradient().toFloatArray(), 1e-5);
            Fixtures.assertClose(expected[3], input.getGradient().toFloatArray(), 1e-5);
            Fixtures.assertClose(expected[3], dora.inputGradient(m.create(v.u, new Shape(2, 3, OUT))).toFloatArray(), 1e-5);
        }
    }

    @Test
    void trainingWithDropoutKeepsTheUndroppedBaseAndFeedsTheDroppedInputToTheCorrectionOnly() {
        Values v = Values.random(4);
        LoraSettings dropped = new LoraSettings(R, 6, 0.3, false, List.of("q_proj")).withVariant(Dora.INSTANCE);
        try (NDManager m = NDManager.newBaseManager()) {
            LoraLinear dora = layer(m, v, new DenseLinear(m.create(v.w, new Shape(OUT, IN)), m.create(v.bias)), dropped);
            // plain LoRA with A = B = I, s = 1 over a zero base returns the dropped input: the same mask for the same
            // seed, module index and shape
            LoraLinear identity = new LoraLinear(new DenseLinear(m.zeros(new Shape(IN, IN)), null), m.eye(IN), m.eye(IN),
                    Map.of(), new LoraSettings(IN, IN, 0.3, false, List.of("q_proj")), 0);
            for (LoraLinear l : List.of(dora, identity)) {
                l.setTraining(true);
                l.setDropoutSeed(17);
            }
            NDArray x = m.create(v.x, new Shape(2, 3, IN));
            float[] xd = identity.forward(x).toFloatArray();
            assertTrue(countZeros(xd) > 0, "some inputs are dropped");
            float[] y = dora.forward(x).toFloatArray();
            Fixtures.assertClose(v.expectedTrainingOutput(xd, dropped.scaling()), y, 1e-5);
            dora.setTraining(false);
            Fixtures.assertClose(v.expectedOutput(v.w, dropped.scaling()), dora.forward(x).toFloatArray(), 1e-5);
        }
    }

    @Test
    void float16InputComputesTheCorrectionInFloat32AndReturnsFloat16() {
        Values v = Values.random(5);
        try (NDManager m = NDManager.newBaseManager()) {
            LoraLinear dora = layer(m, v, new DenseLinear(m.create(v.w, new Shape(OUT, IN)), m.create(v.bias)));
            NDArray x = m.create(v.x, new Shape(2, 3, IN)).toType(DataType.FLOAT16, false);
            x.setRequiresGradient(true);
            NDArray y;
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                y = dora.forward(x);
                collector.backward(y.sum());
            }
            assertEquals(DataType.FLOAT16, y.getDataType());
            Fixtures.assertClose(v.expectedOutput(v.w, SETTINGS.scaling()), y.toType(DataType.FLOAT32, false)
                    .toFloatArray(), 3e-3);
            assertEquals(DataType.FLOAT32, dora.extras().get(Dora.MAGNITUDE).getGradient().getDataType());
            assertEquals(DataType.FLOAT16, x.getGradient().getDataType());
        }
    }

    @Test
    void attachStartsTheMagnitudeAtTheRowNormsOfTheDequantizedBaseSoOutputsAreUnchanged() {
        TinyModel tiny = new TinyModel(7);
        BlockwiseQuantizer nf4 = BlockwiseQuantizer.builder().build();
        try (NDManager m = NDManager.newBaseManager();
                CausalLM model = tiny.build(m, (w, out, in) -> QuantizedLinear.upload(nf4.quantize(w, new long[] {out,
                        in}), null, m))) {
            float[] before = Fixtures.logits(m, model);
            LoraAdapters adapters = LoraAdapters.attach(model, SETTINGS, m, 8);
            String module = "model.layers.1.self_attn.q_proj";
            long[] shape = tiny.linearShape("self_attn.q_proj");
            float[] w = nf4.dequantize(nf4.quantize(tiny.weights.get(module + ".weight"), shape));
            double[] norms = new double[(int) shape[0]];
            for (int o = 0; o < norms.length; o++) {
                for (int j = 0; j < shape[1]; j++) {
                    norms[o] += (double) w[(int) (o * shape[1] + j)] * w[(int) (o * shape[1] + j)];
                }
                norms[o] = Math.sqrt(norms[o]);
            }
            NDArray magnitude = adapters.parameters().get("base_model.model." + module + ".lora_magnitude_vector");
            Fixtures.assertClose(norms, magnitude.toFloatArray(), 1e-6);
            assertTrue(magnitude.hasGradient(), "the magnitude is trainable");
            Fixtures.assertClose(Fixtures.toDoubles(before), Fixtures.logits(m, model), 1e-5);
        }
    }

    @Test
    void theFrozenWeightCollectsNoGradient() {
        Values v = Values.random(6);
        try (NDManager m = NDManager.newBaseManager()) {
            DenseLinear base = new DenseLinear(m.create(v.w, new Shape(OUT, IN)), null);
            LoraLinear dora = layer(m, v, base);
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                collector.backward(dora.forward(m.create(v.x, new Shape(N, IN))).sum());
            }
            assertFalse(base.weight().hasGradient());
        }
    }

    private static int countZeros(float[] v) {
        int zeros = 0;
        for (float f : v) {
            zeros += f == 0 ? 1 : 0;
        }
        return zeros;
    }

    private static LoraLinear layer(NDManager m, Values v, BaseLinear base) {
        return layer(m, v, base, SETTINGS);
    }

    private static LoraLinear layer(NDManager m, Values v, BaseLinear base, LoraSettings settings) {
        NDArray a = m.create(v.a, new Shape(R, IN));
        NDArray b = m.create(v.b, new Shape(OUT, R));
        NDArray magnitude = m.create(v.m);
        for (NDArray t : List.of(a, b, magnitude)) {
            t.setRequiresGradient(true);
        }
        return new LoraLinear(base, a, b, Map.of(Dora.MAGNITUDE, magnitude), settings, 0);
    }

    /** x [N, IN], W [OUT, IN], bias [OUT], A [R, IN], B [OUT, R], m [OUT], upstream u [N, OUT]. */
    private record Values(float[] x, float[] w, float[] bias, float[] a, float[] b, float[] m, float[] u) {
        static Values random(long seed) {
            Random random = new Random(seed);
            float[] w = Fixtures.scaled(Fixtures.gaussian(random, OUT * IN), 0.2f);
            float[] m = new float[OUT];
            for (int o = 0; o < OUT; o++) {
                m[o] = (float) (0.5 + random.nextDouble()); // unlike the norms, so m / n differs from 1
            }
            return new Values(Fixtures.gaussian(random, N * IN), w, Fixtures.scaled(Fixtures.gaussian(random, OUT), 0.1f),
                    Fixtures.scaled(Fixtures.gaussian(random, R * IN), 0.2f),
                    Fixtures.scaled(Fixtures.gaussian(random, OUT * R), 0.3f), m, Fixtures.gaussian(random, N * OUT));
        }

        /** {@code W + s B A} in float64 for base weight {@code weight}. */
        double[][] combined(float[] weight, double s) {
            double[][] c = new double[OUT][IN];
            for (int o = 0; o < OUT; o++) {
                for (int j = 0; j < IN; j++) {
                    c[o][j] = weight[o * IN + j];
                    for (int r = 0; r < R; r++) {
                        c[o][j] += s * b[o * R + r] * a[r * IN + j];
                    }
                }
            }
            return c;
        }

        /** {@code m / ||W + s B A||} per output row. */
        double[] factors(double[][] combined) {
            double[] f = new double[OUT];
            for (int o = 0; o < OUT; o++) {
                double norm = 0;
                for (double c : combined[o]) {
                    norm += c * c;
                }
                f[o] = m[o] / Math.sqrt(norm);
            }
            return f;
        }

        /** {@code f (W + s B A) x + b}. */
        double[] expectedOutput(float[] weight, double s) {
            double[][] c = combined(weight, s);
            double[] f = factors(c);
            double[] y = new double[N * OUT];
            for (int n = 0; n < N; n++) {
                for (int o = 0; o < OUT; o++) {
                    double dot = 0;
                    for (int j = 0; j < IN; j++) {
                        dot += c[o][j] * x[n * IN + j];
                    }
                    y[n * OUT + o] = f[o] * dot + bias[o];
                }
            }
            return y;
        }

        /** {@code W x + b + (f - 1) W x' + f s B A x'} for the dropped input {@code x'}. */
        double[] expectedTrainingOutput(float[] dropped, double s) {
            double[][] c = combined(w, s);
            double[] f = factors(c);
            double[] y = new double[N * OUT];
            for (int n = 0; n < N; n++) {
                for (int o = 0; o < OUT; o++) {
                    double base = 0;
                    double baseDropped = 0;
                    double update = 0;
                    for (int j = 0; j < IN; j++) {
                        base += (double) w[o * IN + j] * x[n * IN + j];
                        baseDropped += (double) w[o * IN + j] * dropped[n * IN + j];
                        update += (c[o][j] - w[o * IN + j]) * dropped[n * IN + j];
                    }
                    y[n * OUT + o] = base + bias[o] + (f[o] - 1) * baseDropped + f[o] * update;
                }
            }
            return y;
        }

        /** {dL/dm, dL/dA, dL/dB, dL/dx} of {@code L = sum(y * u)} in evaluation. */
        double[][] expectedGradients(double s) {
            double[][] c = combined(w, s);
            double[] f = factors(c);
            double[] dm = new double[OUT];
            double[] da = new double[R * IN];
            double[] db = new double[OUT * R];
            double[] dx = new double[N * IN];
            for (int n = 0; n < N; n++) {
                double[] ax = new double[R];
                for (int r = 0; r < R; r++) {
                    for (int j = 0; j < IN; j++) {
                        ax[r] += (double) a[r * IN + j] * x[n * IN + j];
                    }
                }
                double[] ufB = new double[R];
                for (int o = 0; o < OUT; o++) {
                    double uf = u[n * OUT + o] * f[o];
                    double dot = 0;
                    for (int j = 0; j < IN; j++) {
                        dot += c[o][j] * x[n * IN + j];
                        dx[n * IN + j] += uf * c[o][j];
                    }
                    dm[o] += u[n * OUT + o] * dot * f[o] / m[o];
                    for (int r = 0; r < R; r++) {
                        db[o * R + r] += s * uf * ax[r];
                        ufB[r] += uf * b[o * R + r];
                    }
                }
                for (int r = 0; r < R; r++) {
                    for (int j = 0; j < IN; j++) {
                        da[r * IN + j] += s * ufB[r] * x[n * IN + j];
                    }
                }
            }
            return new double[][] {dm, da, db, dx};
        }
    }
}
