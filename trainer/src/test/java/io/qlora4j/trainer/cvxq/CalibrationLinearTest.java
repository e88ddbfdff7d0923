package io.qlora4j.trainer.cvxq;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.quant.cvxq.CvxqTensor;
import io.qlora4j.quant.cvxq.PartitionQuantizer;
import io.qlora4j.quant.cvxq.RowClusters;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The statistics a calibration layer gathers from its output probe equal the reference's {@code (grad_out^T x)^2}
 * averaged over columns ({@code grad_sq0}) and over each cluster's rows ({@code grad_sq2}), computed here in float64
 * from the same input and upstream gradient, over two backward passes of one recomputed forward; once quantized, its
 * bias is the reference's correction and its products go through the decoded weight, both computed here in float64.
 */
class CalibrationLinearTest {
    @Test
    void probeStatisticsAreTheSquaredWeightGradientOfEveryPass() {
        int rows = 4;
        int cols = 3;
        int tokens = 5;
        Random random = new Random(3);
        float[] w = gaussian(random, rows * cols);
        float[] x = gaussian(random, tokens * cols);
        float[][] upstream = {gaussian(random, tokens * rows), gaussian(random, tokens * rows)};
        RowClusters clusters = new RowClusters(new int[] {1, 0, 1, 0}, 2);
        double[] row = new double[rows];
        double[] partition = new double[2 * cols];
        for (float[] g : upstream) {
            for (int r = 0; r < rows; r++) {
                for (int j = 0; j < cols; j++) {
                    double grad = 0;
                    for (int t = 0; t < tokens; t++) {
                        grad += (double) g[t * rows + r] * x[t * cols + j];
                    }
                    row[r] += grad * grad / cols;
                    partition[clusters.clusterOfRow()[r] * cols + j] += grad * grad / 2; // two rows per cluster
                }
            }
        }
        try (NDManager m = NDManager.newBaseManager()) {
            CalibrationLinear layer = new CalibrationLinear("p", new DenseLinear(m.create(w, new Shape(rows, cols)), null),
                    null, true, clusters, m);
            layer.startSequence(1);
            layer.probing(true);
            try (GradientCollector collector = m.getEngine().newGradientCollector()) {
                NDArray input = m.create(x, new Shape(1, tokens, cols));
                NDArray out = layer.forward(input);
                for (int i = 0; i < upstream.length; i++) {
                    JniUtils.backward((PtNDArray) out, (PtNDArray) m.create(upstream[i], new Shape(1, tokens, rows)),
                            i == 0, false);
                    layer.addGradient(1);
                }
            }
            layer.probing(false);
            float[] gotRow = layer.rowGradients();
            float[] gotPartition = layer.partitionGradients();
            for (int r = 0; r < rows; r++) {
                assertEquals(row[r], gotRow[r], 1e-5 * Math.abs(row[r]) + 1e-6, "grad_sq0 of row " + r);
            }
            for (int p = 0; p < partition.length; p++) {
                assertEquals(partition[p], gotPartition[p], 1e-5 * Math.abs(partition[p]) + 1e-6, "grad_sq2 " + p);
            }
            layer.close();
        }
    }

    /**
     * {@code b' = b - (W_q - W) E[x]} over the recorded mean input, and {@code y = x W_q^T + b'} from a product made
     * inside an {@code NDScope} (the device copy of {@code W_q} made for it outlives the scope) and one after it.
     */
    @Test
    void quantizedLayerCorrectsItsBiasAndMultipliesByTheDecodedWeight() {
        int rows = 6;
        int cols = 5;
        int tokens = 4;
        Random random = new Random(9);
        float[] w = gaussian(random, rows * cols);
        float[] b = gaussian(random, rows);
        float[] recorded = gaussian(random, tokens * cols);
        float[] x = gaussian(random, tokens * cols);
        RowClusters clusters = new RowClusters(new int[] {0, 1, 0, 1, 1, 0}, 2);
        byte[] depths = new byte[2 * cols];
        for (int p = 0; p < depths.length; p++) {
            depths[p] = (byte) (p % 4); // 0 to 3 bits
        }
        CvxqTensor q = CvxqTensor.quantize(w, rows, cols, clusters, depths, PartitionQuantizer.plain());
        float[] decoded = q.dequantize();
        double[] corrected = new double[rows];
        for (int r = 0; r < rows; r++) {
            corrected[r] = b[r];
            for (int j = 0; j < cols; j++) {
                double mean = 0;
                for (int t = 0; t < tokens; t++) {
                    mean += recorded[t * cols + j] / (double) tokens;
                }
                corrected[r] -= ((double) decoded[r * cols + j] - w[r * cols + j]) * mean;
            }
        }
        try (NDManager m = NDManager.newBaseManager()) {
            CalibrationLinear layer = new CalibrationLinear("p", new DenseLinear(m.create(w, new Shape(rows, cols)), null),
                    m.create(b), true, clusters, m);
            layer.recording(true);
            layer.forward(m.create(recorded, new Shape(1, tokens, cols))).close();
            layer.recording(false);
            ByteBuffer scratch = ByteBuffer.allocateDirect(4 * rows * cols + 64).alignedSlice(64)
                    .order(ByteOrder.nativeOrder());
            layer.setQuantized(q, w.clone(), scratch);
            float[] bias = layer.correctedBias();
            for (int r = 0; r < rows; r++) {
                assertEquals(corrected[r], bias[r], 1e-5, "b' of row " + r);
            }
            NDArray input = m.create(x, new Shape(1, tokens, cols));
            float[] scoped;
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                scoped = layer.forward(input).toFloatArray();
            }
            float[] after = layer.forward(input).toFloatArray();
            for (int t = 0; t < tokens; t++) {
                for (int r = 0; r < rows; r++) {
                    double y = corrected[r];
                    for (int j = 0; j < cols; j++) {
                        y += (double) x[t * cols + j] * decoded[r * cols + j];
                    }
                    assertEquals(y, scoped[t * rows + r], 1e-5, "y in the scope, token " + t + " row " + r);
                    assertEquals(y, after[t * rows + r], 1e-5, "y after it, token " + t + " row " + r);
                }
            }
            layer.close();
        }
    }

    private static float[] gaussian(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian();
        }
        return v;
    }
}
