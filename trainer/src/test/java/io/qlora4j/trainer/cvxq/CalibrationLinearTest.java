package io.qlora4j.trainer.cvxq;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.quant.cvxq.RowClusters;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The statistics a calibration layer gathers from its output probe equal the reference's {@code (grad_out^T x)^2}
 * averaged over columns ({@code grad_sq0}) and over each cluster's rows ({@code grad_sq2}), computed here in float64
 * from the same input and upstream gradient, over two backward passes of one recomputed forward.
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

    private static float[] gaussian(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian();
        }
        return v;
    }
}
