package io.qlora4j.optim;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import java.util.List;
import org.junit.jupiter.api.Test;

/** torch.amp.GradScaler's rules, checked by hand: unscale by the reciprocal, halve on overflow, double after 2000. */
class LossScalerTest {
    private static Parameter withGradient(NDManager m, float... gradient) {
        Parameter param = Backprop.parameter(m, "p", new float[gradient.length]);
        Backprop.accumulate(param.value(), gradient);
        return param;
    }

    @Test
    void finiteGradientsAreDividedByTheScaleAndCountTowardsGrowth() {
        try (NDManager m = NDManager.newBaseManager()) {
            Parameter p = withGradient(m, 65536f, -3 * 65536f, 1f);
            LossScaler scaler = new LossScaler();
            assertTrue(scaler.unscaleAndUpdate(List.of(p)));
            assertArrayEquals(new float[] {1f, -3f, 1f / 65536}, p.value().getGradient().toFloatArray());
            assertEquals(65536f, scaler.scale());
            assertEquals(1, scaler.goodSteps());
        }
    }

    @Test
    void overflowSkipsTheStepAndHalvesTheScale() {
        try (NDManager m = NDManager.newBaseManager()) {
            LossScaler scaler = new LossScaler(1024f, 17);
            assertFalse(scaler.unscaleAndUpdate(List.of(withGradient(m, 1f), withGradient(m, Float.POSITIVE_INFINITY))));
            assertEquals(512f, scaler.scale());
            assertEquals(0, scaler.goodSteps());
            assertFalse(scaler.unscaleAndUpdate(List.of(withGradient(m, Float.NaN))));
            assertEquals(256f, scaler.scale());
        }
    }

    @Test
    void twoThousandGoodStepsDoubleTheScale() {
        try (NDManager m = NDManager.newBaseManager()) {
            Parameter p = withGradient(m, 0f);
            LossScaler scaler = new LossScaler(8f, 1998);
            assertTrue(scaler.unscaleAndUpdate(List.of(p)));
            assertEquals(8f, scaler.scale());
            assertTrue(scaler.unscaleAndUpdate(List.of(p)));
            assertEquals(16f, scaler.scale());
            assertEquals(0, scaler.goodSteps());
        }
    }

    @Test
    void aScaleThatCannotScaleIsRefused() {
        assertThrows(IllegalArgumentException.class, () -> new LossScaler(0f, 0));
        assertThrows(IllegalArgumentException.class, () -> new LossScaler(Float.POSITIVE_INFINITY, 0));
        assertThrows(IllegalArgumentException.class, () -> new LossScaler(2f, -1));
    }
}
