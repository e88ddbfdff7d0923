package io.qlora4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

class DenseLinearTest {
    @Test
    void forwardIsXTimesWeightTransposedPlusBiasOverBatchAxes() {
        // W = [[1, 2, 3], [4, 5, 6]] (out 2, in 3), b = [0.5, -1]; rows of x: [1,0,0], [0,1,0], [1,1,1], [2,-1,0.5]
        try (NDManager m = NDManager.newBaseManager()) {
            DenseLinear layer = new DenseLinear(m.create(new float[] {1, 2, 3, 4, 5, 6}, new Shape(2, 3)),
                    m.create(new float[] {0.5f, -1}));
            NDArray x = m.create(new float[] {1, 0, 0, 0, 1, 0, 1, 1, 1, 2, -1, 0.5f}, new Shape(2, 2, 3));
            NDArray y = layer.forward(x);
            assertEquals(new Shape(2, 2, 2), y.getShape());
            assertArrayEquals(new float[] {1.5f, 3, 2.5f, 4, 6.5f, 14, 2, 5}, y.toFloatArray());
            assertEquals(3, layer.inFeatures());
            assertEquals(2, layer.outFeatures());
            assertEquals(6 * 4 + 2 * 4, layer.bytes());
        }
    }

    @Test
    void forwardLeavesNoArrayInTheWeightsManager() {
        try (NDManager weights = NDManager.newBaseManager(); NDManager call = NDManager.newBaseManager()) {
            DenseLinear layer = new DenseLinear(weights.ones(new Shape(4, 3)), null);
            int before = weights.getManagedArrays().size();
            NDArray y = layer.forward(call.ones(new Shape(5, 3)));
            assertArrayEquals(new float[] {3, 3, 3, 3}, y.get(0).toFloatArray());
            assertEquals(before, weights.getManagedArrays().size());
            assertEquals(call, y.getManager());
        }
    }

    @Test
    void rejectsABiasOfTheWrongLength() {
        try (NDManager m = NDManager.newBaseManager()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> new DenseLinear(m.ones(new Shape(4, 3)), m.ones(new Shape(3))));
            assertEquals("bias must be [4], got (3)", e.getMessage());
        }
    }
}
