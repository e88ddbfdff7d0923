package io.qlora4j.quant.cvxq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;

class NdCvxqTensorTest {
    private static NDManager manager;

    @BeforeAll
    static void engine() {
        System.setProperty("ai.djl.offline", "true");
        manager = NDManager.newBaseManager();
    }

    @AfterAll
    static void release() {
        manager.close();
    }

    private static float[] onDevice(CvxqTensor t) {
        try (NdCvxqTensor nd = NdCvxqTensor.upload(t, manager); NDArray w = nd.dequantize(DataType.FLOAT32)) {
            return w.toFloatArray();
        }
    }

    @Test
    void deviceDecodeIsBitIdenticalToTheJavaDecode() {
        Random random = new Random(4);
        int rows = 37;
        int columns = 19;
        float[] w = PartitionQuantizerTest.laplace(random, rows * columns, 0.001, 0.03);
        RowClusters clusters = RowClusters.byScore(random.doubles(rows).toArray(), 4); // 10, 9, 9, 9: padded slots
        byte[] depths = new byte[4 * columns];
        for (int p = 0; p < depths.length; p++) {
            depths[p] = (byte) (p % 9);
        }
        CvxqTensor t = CvxqTensor.quantize(w, rows, columns, clusters, depths, PartitionQuantizer.plain());
        assertArrayEquals(t.dequantize(), onDevice(t));
    }

    @Test
    void handBuiltTensorDecodesOnTheDeviceAsInJava() {
        CvxqTensor t = CvxqTensorTest.handBuilt();
        assertArrayEquals(t.dequantize(), onDevice(t));
    }

    @Test
    void allZeroDepthsDecodeToTheLocations() {
        float[] w = PartitionQuantizerTest.laplace(new Random(2), 8 * 3, 0, 1);
        CvxqTensor t = CvxqTensor.quantize(w, 8, 3, RowClusters.consecutive(8, 2), new byte[6], PartitionQuantizer.plain());
        assertArrayEquals(t.dequantize(), onDevice(t));
    }
}
