package io.qlora4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.training.GradientCollector;
import java.nio.ByteBuffer;
import org.junit.jupiter.api.Test;

class GraphScalarsTest {
    @Test
    void scalarOperandSurvivesGarbageCollectionBeforeBackward() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            for (int run = 0; run < 3; run++) {
                NDArray x = m.create(new float[] {1, 2, 3, 4});
                x.setRequiresGradient(true);
                try (GradientCollector c = Engine.getInstance().newGradientCollector()) {
                    NDArray y = GraphScalars.times(x, 3);
                    System.gc();
                    Thread.sleep(20);
                    for (int i = 0; i < 200; i++) {
                        ByteBuffer.allocateDirect(64).putFloat(0, 12345.678f);
                    }
                    c.backward(y.sum());
                }
                // d/dx sum(3x) = 3 everywhere (with x.mul(3f) this read freed memory: 1.4e-45, -1.3e34, ...)
                assertArrayEquals(new float[] {3, 3, 3, 3}, x.getGradient().toFloatArray());
            }
        }
    }
}
