package io.qlora4j.quant.hqq;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import org.junit.jupiter.api.Test;

class NdHqqTensorTest {

    @Test
    void theDeviceOpsTheHostAndJavasDecodingOnTheDeviceAgreeBitForBitForEveryWidthAndAxis() {
        long[][] shapes = {{128, 96}, {64, 40}};
        try (NDManager manager = NDManager.newBaseManager()) {
            for (long[] shape : shapes) {
                float[] w = HqqQuantizerTest.lcgWeights((int) (shape[0] * shape[1]), shape[1], 27);
                float[] other = HqqQuantizerTest.lcgWeights((int) (shape[0] * shape[1]), shape[1] + 1, 28);
                for (int axis = 0; axis < 2; axis++) {
                    for (int bits : HqqParams.BITS) {
                        HqqQuantizer q = HqqQuantizer.builder(bits).optAxis(axis).build();
                        HqqTensor t = q.quantize(w, shape);
                        String what = bits + "-bit axis " + axis + " shape " + shape[0] + "x" + shape[1];
                        try (NdHqqTensor nd = NdHqqTensor.upload(t, manager);
                                NdHqqTensor next = NdHqqTensor.upload(q.quantize(other, shape), manager);
                                NDArray ops = nd.dequantizeOnDevice(DataType.FLOAT32);
                                NDArray owned = nd.dequantize()) {
                            int[] expected = HqqQuantizerTest.bits(t.dequantize());
                            assertEquals(new Shape(shape), ops.getShape(), what);
                            assertEquals(DataType.FLOAT32, ops.getDataType(), what);
                            assertArrayEquals(expected, HqqQuantizerTest.bits(ops.toFloatArray()), what);
                            assertEquals(new Shape(shape), owned.getShape(), what);
                            assertArrayEquals(expected, HqqQuantizerTest.bits(owned.toFloatArray()), what);
                            try (NDArray scratch = nd.dequantizeTransient(DataType.FLOAT32)) {
                                assertEquals(new Shape(shape), scratch.getShape(), what);
                                assertArrayEquals(expected, HqqQuantizerTest.bits(scratch.toFloatArray()), what);
                            }
                            // the owned array does not share the scratch that the next weight's decoding overwrites
                            next.dequantizeTransient(DataType.FLOAT32).close();
                            assertArrayEquals(expected, HqqQuantizerTest.bits(owned.toFloatArray()), what);
                        }
                    }
                }
            }
        }
    }

    @Test
    void float16DequantizationRoundsEachStepToHalfAsHqqDoes() {
        float[] w = HqqQuantizerTest.lcgWeights(64 * 32, 5, 24);
        HqqTensor t = HqqQuantizer.builder(4).build().quantize(w, new long[] {64, 32});
        byte[] codes = t.codes();
        try (NDManager manager = NDManager.newBaseManager(); NdHqqTensor nd = NdHqqTensor.upload(t, manager);
                NDArray half = nd.dequantize(DataType.FLOAT16)) {
            assertEquals(DataType.FLOAT16, half.getDataType());
            float[] got = half.toType(DataType.FLOAT32, false).toFloatArray();
            for (int i = 0; i < codes.length; i++) {
                int g = i % 32;
                float z = toHalf(t.zero()[g]);
                float s = toHalf(t.scale()[g]);
                float expected = toHalf(toHalf((codes[i] & 0xFF) - z) * s);
                assertEquals(expected, got[i], "element " + i);
            }
        }
    }

    private static float toHalf(float x) {
        return io.qlora4j.quant.HalfFloats.f16ToFloat(io.qlora4j.quant.HalfFloats.floatToF16(x));
    }

    @Test
    void deviceHoldsHqqsPackedBytesPlusFloat32Metadata() {
        float[] w = HqqQuantizerTest.lcgWeights(64 * 64, 3, 26);
        HqqTensor t = HqqQuantizer.builder(3).build().quantize(w, new long[] {64, 64});
        try (NDManager manager = NDManager.newBaseManager(); NdHqqTensor nd = NdHqqTensor.upload(t, manager)) {
            // 7 int32 words per column of 64 codes, 64 columns; scale and zero: 64 floats each; the table of the
            // ten codes' bits of each of a word's four bytes (float32) and the four byte offsets (int32)
            assertEquals(7 * 4 * 64 + 2 * 4 * 64 + 4 * 256 * 10 * 4 + 4 * 4, nd.bytes());
            NDArray out = nd.dequantize();
            assertSame(manager, out.getManager());
        }
    }
}
