package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import io.qlora4j.model.decoder.CausalLM;
import java.nio.FloatBuffer;
import java.util.Arrays;
import java.util.Random;

/** Small helpers shared by the adapter tests: random values, float64 copies, a relative comparison. */
final class Fixtures {
    private Fixtures() {}

    static float[] gaussian(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian();
        }
        return v;
    }

    /** {@code v} multiplied by {@code factor} in place, returned. */
    static float[] scaled(float[] v, float factor) {
        for (int i = 0; i < v.length; i++) {
            v[i] *= factor;
        }
        return v;
    }

    static double[] toDoubles(float[] v) {
        double[] d = new double[v.length];
        for (int i = 0; i < v.length; i++) {
            d[i] = v[i];
        }
        return d;
    }

    /** The rows one after the other. */
    static double[] flatten(double[][] rows) {
        return Arrays.stream(rows).flatMapToDouble(Arrays::stream).toArray();
    }

    /** {@code max |actual - expected| <= relative * max |expected|}, with a non-zero expectation. */
    static void assertClose(double[] expected, float[] actual, double relative) {
        assertEquals(expected.length, actual.length);
        double scale = 0;
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            scale = Math.max(scale, Math.abs(expected[i]));
            worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
        }
        assertTrue(scale > 0, "degenerate expectation");
        assertTrue(worst <= relative * scale, "max difference " + worst + " exceeds " + relative + " x " + scale);
    }

    /** Gives every B values of about 0.3 (a fresh adapter's B = 0 would hide A from outputs and gradients). */
    static void randomizeB(LoraAdapters adapters, long seed) {
        Random random = new Random(seed);
        for (LoraLinear l : adapters.modules().values()) {
            float[] b = gaussian(random, Math.toIntExact(l.loraB().size()));
            for (int i = 0; i < b.length; i++) {
                b[i] *= 0.3f;
            }
            l.loraB().set(FloatBuffer.wrap(b));
        }
    }

    /** The model's logits for {@link TinyModel#ids} of length 6, flattened. */
    static float[] logits(NDManager m, CausalLM model) {
        return model.forward(TinyModel.idsArray(m, TinyModel.ids(6)), null).toFloatArray();
    }
}
