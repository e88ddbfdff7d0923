package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.qlora4j.model.llama.LlamaLoader;
import io.qlora4j.model.llama.LlamaModel;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class LossHeadTest {
    @TempDir
    Path dir;

    /** Collects garbage and refills freed direct memory with NaN, as a long step would by chance. */
    private static void churnDirectMemory() throws InterruptedException {
        for (int i = 0; i < 3; i++) {
            System.gc();
            Thread.sleep(30);
        }
        List<ByteBuffer> junk = new ArrayList<>();
        for (int i = 0; i < 20_000; i++) {
            ByteBuffer b = ByteBuffer.allocateDirect(4).order(ByteOrder.nativeOrder());
            b.putFloat(0, Float.NaN);
            junk.add(b);
        }
    }

    private static float[] hiddenGradient(LlamaModel model, NDManager manager, boolean churn) throws Exception {
        try (NDManager m = manager.newSubManager()) {
            NDArray hidden = m.randomNormal(0, 1, new Shape(1, 4, 16), DataType.FLOAT32);
            hidden.setRequiresGradient(true);
            NDArray labels = m.create(new long[] {-100, 13, 14, -100}, new Shape(1, 4));
            try (GradientCollector collector = m.getEngine().newGradientCollector()) {
                NDArray loss = new LossHead(model, labels, 2).loss(hidden);
                if (churn) {
                    churnDirectMemory();
                }
                collector.backward(loss);
            }
            return hidden.getGradient().toFloatArray();
        }
    }

    @Test
    void gradientSurvivesAGarbageCollectionBetweenForwardAndBackward() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            LlamaModel model = LlamaLoader.builder().build().load(TinyModel.write(dir.resolve("base"), 3), manager);
            manager.getEngine().setRandomSeed(1);
            float[] calm = hiddenGradient(model, manager, false);
            manager.getEngine().setRandomSeed(1);
            float[] churned = hiddenGradient(model, manager, true);
            assertArrayEquals(calm, churned);
        }
    }
}
