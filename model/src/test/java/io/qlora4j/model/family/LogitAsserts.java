package io.qlora4j.model.family;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

/** Comparisons of the model's float32 logits with a float64 reference, within 1e-4 of the reference's scale. */
public final class LogitAsserts {
    private static final double TOLERANCE = 1e-4;

    private LogitAsserts() {}

    /**
     * Asserts rows {@code from .. to-1} of {@code actual} (flattened {@code [s, vocab]}) match {@code expected}, and
     * that the reference is not degenerate (some logit above 0.5 in magnitude).
     */
    public static void assertClose(double[][] expected, float[] actual, int from, int to) {
        int vocab = expected[0].length;
        double scale = 0;
        double diff = 0;
        for (int i = from; i < to; i++) {
            for (int v = 0; v < vocab; v++) {
                scale = Math.max(scale, Math.abs(expected[i][v]));
                diff = Math.max(diff, Math.abs(expected[i][v] - actual[i * vocab + v]));
            }
        }
        assertTrue(scale > 0.5, "logits must not be degenerate, max |ref| " + scale);
        assertTrue(diff <= TOLERANCE * scale, "max |djl - ref| " + diff + " > 1e-4 * " + scale);
    }

    /** Asserts two float32 results (a cached and a full forward, say) agree within 1e-4 of their scale. */
    public static void assertArrayClose(float[] expected, float[] actual) {
        assertEquals(expected.length, actual.length);
        double scale = 0;
        double diff = 0;
        for (int i = 0; i < expected.length; i++) {
            scale = Math.max(scale, Math.abs(expected[i]));
            diff = Math.max(diff, Math.abs(expected[i] - actual[i]));
        }
        assertTrue(diff <= TOLERANCE * scale, "max diff " + diff + " > 1e-4 * " + scale);
    }
}
