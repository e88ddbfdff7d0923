package io.qlora4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.NdQuantizedTensor;
import io.qlora4j.quant.QuantType;
import io.qlora4j.quant.QuantizedTensor;
import java.util.Random;
import org.junit.jupiter.api.Test;

class QuantizedLinearTest {
    private static float[] gaussian(int n, long seed) {
        Random r = new Random(seed);
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) r.nextGaussian();
        }
        return v;
    }

    private static void assertEqualsDenseOnDequantizedWeights(BlockwiseQuantizer quantizer) {
        long[] shape = {24, 40}; // 960 elements: 15 blocks of 64
        QuantizedTensor q = quantizer.quantize(gaussian(960, 1), shape);
        float[] bias = gaussian(24, 2);
        try (NDManager m = NDManager.newBaseManager()) {
            QuantizedLinear quantized = QuantizedLinear.upload(q, m.create(bias), m);
            DenseLinear dense = new DenseLinear(m.create(quantizer.dequantize(q), new Shape(shape)), m.create(bias));
            NDArray x = m.create(gaussian(2 * 3 * 40, 3), new Shape(2, 3, 40));
            assertArrayEquals(dense.forward(x).toFloatArray(), quantized.forward(x).toFloatArray());
            // the input gradient g W, against float64 on the dequantized weight
            float[] g = gaussian(2 * 3 * 24, 5);
            float[] w = quantizer.dequantize(q);
            NDArray upstream = m.create(g, new Shape(2, 3, 24));
            float[] dx = quantized.inputGradient(upstream).toFloatArray();
            assertArrayEquals(dense.inputGradient(upstream).toFloatArray(), dx);
            for (int n = 0; n < 6; n++) {
                for (int j = 0; j < 40; j++) {
                    double expected = 0;
                    double magnitude = 0;
                    for (int o = 0; o < 24; o++) {
                        expected += (double) g[n * 24 + o] * w[o * 40 + j];
                        magnitude += Math.abs((double) g[n * 24 + o] * w[o * 40 + j]);
                    }
                    assertEquals(expected, dx[n * 40 + j], 1e-6 * magnitude);
                }
            }
            assertEquals(40, quantized.inFeatures());
            assertEquals(24, quantized.outFeatures());
        }
    }

    @Test
    void nf4DoubleQuantForwardEqualsDenseOnTheDequantizedWeightBitForBit() {
        assertEqualsDenseOnDequantizedWeights(BlockwiseQuantizer.builder().build());
    }

    @Test
    void fp4ForwardEqualsDenseOnTheDequantizedWeightBitForBit() {
        assertEqualsDenseOnDequantizedWeights(
                BlockwiseQuantizer.builder().optType(QuantType.FP4).optDoubleQuant(false).optBlocksize(32).build());
    }

    @Test
    void aProductAGraphRecordsKeepsItsWeightWhileGraphFreeProductsReuseTheScratch() {
        long[] shape = {24, 40};
        BlockwiseQuantizer quantizer = BlockwiseQuantizer.builder().build();
        QuantizedTensor q = quantizer.quantize(gaussian(960, 11), shape);
        QuantizedTensor other = quantizer.quantize(gaussian(960, 12), shape);
        float[] w = quantizer.dequantize(q);
        float[] x = gaussian(3 * 40, 13);
        try (NDManager m = NDManager.newBaseManager()) {
            QuantizedLinear layer = QuantizedLinear.upload(q, m.create(gaussian(24, 14)), m);
            QuantizedLinear second = QuantizedLinear.upload(other, null, m);
            NDArray free = m.create(x, new Shape(3, 40));
            float[] graphFree = layer.forwardGraphFree(free).toFloatArray();
            NDArray input = m.create(x, new Shape(3, 40));
            input.setRequiresGradient(true);
            try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
                NDArray y = layer.forward(input);
                assertArrayEquals(graphFree, y.toFloatArray());
                // products no graph records, before backward: they must not touch the weight the graph keeps
                second.forwardGraphFree(free).close();
                layer.forwardGraphFree(free).close();
                second.inputGradient(m.ones(new Shape(3, 24))).close();
                collector.backward(y.sum());
            }
            // d sum(x W^T + b) / dx = column sums of W, in float64
            float[] dx = input.getGradient().toFloatArray();
            for (int j = 0; j < 40; j++) {
                double expected = 0;
                for (int o = 0; o < 24; o++) {
                    expected += w[o * 40 + j];
                }
                for (int n = 0; n < 3; n++) {
                    assertEquals(expected, dx[n * 40 + j], 1e-5, "dx[" + n + ", " + j + "]");
                }
            }
        }
    }

    @Test
    void forwardKeepsNoDequantizedCopyAndCountsPackedBytes() {
        QuantizedTensor q = BlockwiseQuantizer.builder().build().quantize(gaussian(64 * 48, 4), new long[] {64, 48});
        try (NDManager m = NDManager.newBaseManager(); NDManager call = NDManager.newBaseManager()) {
            NdQuantizedTensor weight = NdQuantizedTensor.upload(q, m);
            QuantizedLinear layer = new QuantizedLinear(weight, null);
            int before = m.getManagedArrays().size();
            NDArray y = layer.forward(call.ones(new Shape(5, 48)));
            assertEquals(new Shape(5, 64), y.getShape());
            assertEquals(before, m.getManagedArrays().size());
            assertEquals(weight.bytes(), layer.bytes());
        }
    }
}
