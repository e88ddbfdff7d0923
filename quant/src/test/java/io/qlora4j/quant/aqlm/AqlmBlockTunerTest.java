package io.qlora4j.quant.aqlm;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;

class AqlmBlockTunerTest {
    @Test
    void tuningCodebooksAndScalesMovesABlocksOutputTowardsItsTarget() {
        AqlmScheme s = new AqlmScheme(2, 3, 4, 1);
        AqlmTensor first = AqlmTensorTest.random(s, 16, 16, 1);
        AqlmTensor second = AqlmTensorTest.random(s, 8, 16, 2);
        try (NDManager m = NDManager.newBaseManager()) {
            Random rnd = new Random(8);
            float[] xs = new float[6 * 5 * 16];
            for (int i = 0; i < xs.length; i++) {
                xs[i] = (float) rnd.nextGaussian();
            }
            NDArray x = m.create(xs, new Shape(6, 5, 16));
            NDArray target;
            try (NdAqlmTensor a = NdAqlmTensor.upload(first, m); NdAqlmTensor b = NdAqlmTensor.upload(second, m)) {
                target = x.matMul(a.dequantize(DataType.FLOAT32).transpose())
                        .matMul(b.dequantize(DataType.FLOAT32).transpose());
            }
            // the same codes with noisy codebooks: tuning should pull the outputs back
            NdAqlmTensor a = NdAqlmTensor.trainable(noisy(first), m);
            NdAqlmTensor b = NdAqlmTensor.trainable(noisy(second), m);
            double[] losses = AqlmBlockTuner.builder().optEpochs(6).optLr(3e-3).optBatchSize(2).build()
                    .tune(List.of(a, b), in -> in.matMul(a.dequantize(DataType.FLOAT32).transpose())
                            .matMul(b.dequantize(DataType.FLOAT32).transpose()), x, target, (e, l) -> { });
            assertEquals(6, losses.length);
            for (int e = 1; e < losses.length; e++) {
                assertTrue(losses[e] < losses[e - 1], java.util.Arrays.toString(losses));
            }
            assertTrue(losses[5] < 0.6 * losses[0], java.util.Arrays.toString(losses));
            AqlmTensor tuned = a.toTensor();
            assertEquals(List.of(), NdAqlmTensor.upload(tuned, m).parameters());
            for (float c : tuned.codebooks()) {
                assertTrue(Math.abs(c) < 0x1p-14f || (Float.floatToRawIntBits(c) & 0x1FFF) == 0, "not fp16: " + c);
            }
        }
    }

    private static AqlmTensor noisy(AqlmTensor t) {
        Random rnd = new Random(9);
        float[] cb = t.codebooks().clone();
        for (int i = 0; i < cb.length; i++) {
            cb[i] += (float) (0.3 * rnd.nextGaussian());
        }
        return new AqlmTensor(t.scheme(), t.outFeatures(), t.inFeatures(), t.codes(), cb, t.scales());
    }
}
