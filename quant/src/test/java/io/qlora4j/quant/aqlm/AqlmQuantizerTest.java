package io.qlora4j.quant.aqlm;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class AqlmQuantizerTest {
    private static final int OUT = 32;
    private static final int IN = 64;

    /** A weight with some structure (a low-rank part plus noise) and an X^T X of correlated inputs. */
    private static float[] weight() {
        Random rnd = new Random(11);
        float[] u = new float[OUT * 2];
        float[] v = new float[2 * IN];
        for (int i = 0; i < u.length; i++) {
            u[i] = (float) rnd.nextGaussian();
        }
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) rnd.nextGaussian();
        }
        float[] w = new float[OUT * IN];
        for (int o = 0; o < OUT; o++) {
            for (int i = 0; i < IN; i++) {
                w[o * IN + i] = (float) (0.05 * (u[o * 2] * v[i] + u[o * 2 + 1] * v[IN + i]) + 0.02 * rnd.nextGaussian());
            }
        }
        return w;
    }

    /** Mean of x x^T over 256 tokens whose features mix a few shared directions. */
    private static NDArray xtx(NDManager m) {
        Random rnd = new Random(12);
        int tokens = 256;
        float[] x = new float[tokens * IN];
        for (int t = 0; t < tokens; t++) {
            double shared = rnd.nextGaussian();
            for (int i = 0; i < IN; i++) {
                x[t * IN + i] = (float) (rnd.nextGaussian() + (i % 4 == 0 ? 2 * shared : 0));
            }
        }
        NDArray xs = m.create(x, new Shape(tokens, IN)).toType(DataType.FLOAT64, false);
        return xs.transpose().matMul(xs).div(tokens);
    }

    private static AqlmQuantizer.Result run(AqlmScheme scheme, NDManager m, List<Double> errors) {
        return AqlmQuantizer.builder(scheme).optStepsPerEpoch(10).optMaxEpochs(3).optInitMaxIter(10).optLr(1e-3)
                .build().quantize(weight(), OUT, IN, xtx(m), 7, (e, s, r) -> errors.add(r));
    }

    @Test
    void decodedWeightsReproduceTheErrorReportedAndTheOptimizationLowersIt() {
        try (NDManager m = NDManager.newBaseManager()) {
            List<Double> errors = new ArrayList<>();
            AqlmQuantizer.Result r = run(new AqlmScheme(2, 4, 4, 1), m, errors);
            AqlmTensor t = r.tensor();
            // an independent float64 evaluation of the stored codes, codebooks and scales
            double[] w = toDouble(weight());
            double[] decoded = toDouble(t.decode());
            double[][] x = xtxArray(m);
            double err = 0;
            double ref = 0;
            for (int o = 0; o < OUT; o++) {
                for (int i = 0; i < IN; i++) {
                    for (int j = 0; j < IN; j++) {
                        double di = decoded[o * IN + i] - w[o * IN + i];
                        double dj = decoded[o * IN + j] - w[o * IN + j];
                        err += di * x[i][j] * dj;
                        ref += w[o * IN + i] * x[i][j] * w[o * IN + j];
                    }
                }
            }
            assertEquals(err / ref, r.relativeError(), 1e-9);
            assertTrue(errors.get(errors.size() - 1) < errors.get(0), errors.toString());
            assertTrue(r.relativeError() < 0.5, "relative error " + r.relativeError());
            // codebooks and scales are float16 values, as stored: no more than 11 significant bits
            for (float c : t.codebooks()) {
                assertTrue(Math.abs(c) < 0x1p-14f || (Float.floatToRawIntBits(c) & 0x1FFF) == 0, "not fp16: " + c);
            }
            for (float c : t.scales()) {
                assertEquals(0, Float.floatToRawIntBits(c) & 0x1FFF, "not fp16: " + c);
            }
        }
    }

    @Test
    void sameSeedSameTensor() {
        try (NDManager m = NDManager.newBaseManager()) {
            AqlmTensor a = run(new AqlmScheme(1, 6, 8, 1), m, new ArrayList<>()).tensor();
            AqlmTensor b = run(new AqlmScheme(1, 6, 8, 1), m, new ArrayList<>()).tensor();
            assertArrayEquals(a.codes(), b.codes());
            assertArrayEquals(a.codebooks(), b.codebooks());
            assertArrayEquals(a.scales(), b.scales());
        }
    }

    @Test
    void errorFallsWithMoreCodebooksAndSmallerGroups() {
        try (NDManager m = NDManager.newBaseManager()) {
            double oneByFour = run(new AqlmScheme(1, 4, 4, 1), m, new ArrayList<>()).relativeError();
            double twoByFour = run(new AqlmScheme(2, 4, 4, 1), m, new ArrayList<>()).relativeError();
            double g8 = run(new AqlmScheme(2, 4, 8, 1), m, new ArrayList<>()).relativeError();
            assertTrue(twoByFour < oneByFour, twoByFour + " vs " + oneByFour);
            assertTrue(twoByFour < g8, twoByFour + " vs " + g8);
        }
    }

    @Test
    void beamSearchWithSeveralHypothesesIsNoWorseThanGreedy() {
        try (NDManager m = NDManager.newBaseManager()) {
            AqlmScheme s = new AqlmScheme(2, 3, 4, 2);
            double greedy = AqlmQuantizer.builder(s).optStepsPerEpoch(5).optMaxEpochs(2).optInitMaxIter(10).build()
                    .quantize(weight(), OUT, IN, xtx(m), 3, (e, st, r) -> { }).relativeError();
            double beam = AqlmQuantizer.builder(s).optStepsPerEpoch(5).optMaxEpochs(2).optInitMaxIter(10)
                    .optBeamSize(4).build().quantize(weight(), OUT, IN, xtx(m), 3, (e, st, r) -> { }).relativeError();
            assertTrue(beam <= greedy * 1.02, beam + " vs " + greedy);
        }
    }

    private static double[] toDouble(float[] f) {
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    private static double[][] xtxArray(NDManager m) {
        double[] flat = xtx(m).toDoubleArray();
        double[][] x = new double[IN][IN];
        for (int i = 0; i < IN; i++) {
            System.arraycopy(flat, i * IN, x[i], 0, IN);
        }
        return x;
    }
}
