package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.Bnb4bitFormat;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.QuantType;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * LoftQ as PEFT's {@code loftq_init}: alternating quantization {@code Q = deq(quant(res))} and the rank-r SVD of
 * {@code W - Q}; checked against the NF4 round trip and the defining properties of a truncated SVD, written here.
 */
class LoftqTest {
    private static final int OUT = 32;
    private static final int IN = 128;
    private static final int RANK = 4;

    @ParameterizedTest(name = "{0} base")
    @ValueSource(strings = {"nf4+dq", "dense"})
    void oneIterationIsTheNf4RoundTripPlusTheRankRSvdOfItsError(String base) throws Exception {
        float[] w = weight(1);
        BaseFormat format = base.equals("dense") ? BaseFormats.DENSE : BaseFormats.QLORA;
        BaseFormat quantizing = base.equals("dense") ? new Bnb4bitFormat(QuantType.NF4, 64, false) : format;
        AdapterInit.Split split = split(1, format, RANK, new InitReport());
        float[] q = quantizing.quantize(FloatSource.of(w), new long[] {OUT, IN}).dequantize();
        // over a quantized base the base stores W itself, quantized by the loader to exactly Q; over a dense one, Q
        assertArrayEquals(base.equals("dense") ? q : w, split.base());
        double[][] ba = product(split.b(), split.a());
        double[][] residual = new double[OUT][IN];
        for (int o = 0; o < OUT; o++) {
            for (int j = 0; j < IN; j++) {
                residual[o][j] = (double) w[o * IN + j] - q[o * IN + j] - ba[o][j];
            }
        }
        // a truncated SVD leaves a residual orthogonal to its factors, no larger than its smallest singular value
        double smallest = Double.POSITIVE_INFINITY;
        for (int k = 0; k < RANK; k++) {
            double bNorm = 0;
            double aNorm = 0;
            for (int o = 0; o < OUT; o++) {
                double bt = 0;
                for (int j = 0; j < IN; j++) {
                    bt += residual[o][j] * split.a()[k * IN + j];
                }
                assertEquals(0, bt, 1e-4, "R A^T");
                bNorm += (double) split.b()[o * RANK + k] * split.b()[o * RANK + k];
            }
            for (int j = 0; j < IN; j++) {
                double rb = 0;
                for (int o = 0; o < OUT; o++) {
                    rb += residual[o][j] * split.b()[o * RANK + k];
                }
                assertEquals(0, rb, 1e-4, "B^T R");
                aNorm += (double) split.a()[k * IN + j] * split.a()[k * IN + j];
            }
            smallest = Math.min(smallest, Math.sqrt(aNorm * bNorm));
        }
        assertTrue(largestSingularValue(residual) <= smallest * (1 + 1e-6),
                largestSingularValue(residual) + " > " + smallest);
    }

    @ParameterizedTest(name = "{0} base")
    @ValueSource(strings = {"nf4+dq", "dense"})
    void reconstructionErrorFallsMonotonicallyWithIterationsAndIsReported(String base) throws Exception {
        BaseFormat format = base.equals("dense") ? BaseFormats.DENSE : BaseFormats.QLORA;
        float[] w = weight(1);
        List<Double> errors = new ArrayList<>();
        InitReport report = null;
        for (int iterations = 1; iterations <= 5; iterations++) {
            report = new InitReport();
            AdapterInit.Split split = split(iterations, format, RANK, report);
            float[] q = format == BaseFormats.DENSE ? split.base()
                    : format.quantize(FloatSource.of(split.base()), new long[] {OUT, IN}).dequantize();
            double[][] ba = product(split.b(), split.a());
            double error = 0;
            double norm = 0;
            for (int o = 0; o < OUT; o++) {
                for (int j = 0; j < IN; j++) {
                    double d = (double) w[o * IN + j] - q[o * IN + j] - ba[o][j]; // scaling 1: lora_alpha = r
                    error += d * d;
                    norm += (double) w[o * IN + j] * w[o * IN + j];
                }
            }
            errors.add(Math.sqrt(error / norm));
        }
        for (int i = 1; i < errors.size(); i++) {
            assertTrue(errors.get(i) <= errors.get(i - 1), "||W - (Q + s B A)|| by iteration: " + errors);
        }
        assertTrue(errors.get(4) < 0.97 * errors.get(0), "the alternation helps: " + errors);
        assertEquals(5, report.loftqErrors().size());
        assertEquals(errors.get(4), report.loftqErrors().get(4), 1e-6, "the last reported error is the start's");
        assertEquals(6, report.lines().size());
        assertTrue(report.lines().get(0).startsWith("LoftQ iteration 1: ||W - (Q + L R)|| / ||W|| = "),
                report.lines().get(0));
    }

    /** LoftQ's split of {@link #weight} with {@code lora_alpha = r} (scaling 1, where PEFT's start is Q + L R). */
    private static AdapterInit.Split split(int iterations, BaseFormat format, int rank, InitReport report)
            throws Exception {
        LoftqInit init = new LoftqInit(4, iterations);
        LoraSettings settings = new LoraSettings(rank, rank, 0, false, List.of("all")).withInit(init);
        try (NDManager m = NDManager.newBaseManager()) {
            return init.split("model.layers.0.mlp.up_proj", weight(1), new long[] {OUT, IN}, settings, format,
                    new Random(0), m, report);
        }
    }

    /** A weight with a few strong directions over Gaussian noise, as trained weights have. */
    private static float[] weight(long seed) {
        Random random = new Random(seed);
        float[] w = Fixtures.gaussian(random, OUT * IN);
        double[][] u = TruncatedSvdTest.orthonormalColumns(random, OUT, 3);
        double[][] v = TruncatedSvdTest.orthonormalColumns(random, IN, 3);
        for (int o = 0; o < OUT; o++) {
            for (int j = 0; j < IN; j++) {
                for (int k = 0; k < 3; k++) {
                    w[o * IN + j] += (float) (30.0 / (k + 1) * u[o][k] * v[j][k]);
                }
            }
        }
        return w;
    }

    /** {@code B [OUT, RANK] A [RANK, IN]} in float64. */
    private static double[][] product(float[] b, float[] a) {
        double[][] out = new double[OUT][IN];
        for (int o = 0; o < OUT; o++) {
            for (int k = 0; k < RANK; k++) {
                for (int j = 0; j < IN; j++) {
                    out[o][j] += (double) b[o * RANK + k] * a[k * IN + j];
                }
            }
        }
        return out;
    }

    /** The largest singular value by power iteration on {@code R^T R}, in float64. */
    private static double largestSingularValue(double[][] r) {
        double[] x = new double[IN];
        java.util.Arrays.fill(x, 1);
        double sigma = 0;
        for (int it = 0; it < 500; it++) {
            double[] rx = new double[OUT];
            for (int o = 0; o < OUT; o++) {
                for (int j = 0; j < IN; j++) {
                    rx[o] += r[o][j] * x[j];
                }
            }
            double[] y = new double[IN];
            for (int j = 0; j < IN; j++) {
                for (int o = 0; o < OUT; o++) {
                    y[j] += r[o][j] * rx[o];
                }
            }
            double norm = 0;
            for (double value : y) {
                norm += value * value;
            }
            norm = Math.sqrt(norm);
            for (int j = 0; j < IN; j++) {
                x[j] = y[j] / norm;
            }
            sigma = Math.sqrt(norm);
        }
        return sigma;
    }
}
