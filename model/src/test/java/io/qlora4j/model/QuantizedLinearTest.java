package io.qlora4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
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
