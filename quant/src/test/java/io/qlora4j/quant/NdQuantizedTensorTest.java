package io.qlora4j.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteOrder;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

class NdQuantizedTensorTest {

    private static float[] gaussian(int n, long seed) {
        Random rnd = new Random(seed);
        float[] x = new float[n];
        for (int i = 0; i < n; i++) {
            x[i] = (float) (rnd.nextGaussian() * 0.05);
        }
        return x;
    }

    @Test
    void deviceDequantizationEqualsJavaBitForBit() {
        int[][] cases = {{32, 1}, {64, 4097}, {128, 128 * 300 + 77}, {256, 256 * 257}, {4096, 3 * 4096 + 1}};
        try (NDManager manager = NDManager.newBaseManager()) {
            for (int[] c : cases) {
                int blocksize = c[0];
                float[] data = gaussian(c[1], c[1]);
                long[] shape = c[1] % 2 == 0 ? new long[] {2, c[1] / 2} : new long[] {c[1]};
                for (QuantType type : QuantType.values()) {
                    for (boolean dq : new boolean[] {false, true}) {
                        BlockwiseQuantizer q = BlockwiseQuantizer.builder()
                                .optType(type).optBlocksize(blocksize).optDoubleQuant(dq).build();
                        QuantizedTensor t = q.quantize(data, shape);
                        float[] java = q.dequantize(t);
                        try (NdQuantizedTensor nd = NdQuantizedTensor.upload(t, manager);
                                NDArray out = nd.dequantizeOnDevice()) {
                            String what = type + " blocksize " + blocksize + " n " + c[1] + " dq " + dq;
                            assertEquals(new Shape(shape), out.getShape(), what);
                            assertEquals(DataType.FLOAT32, out.getDataType(), what);
                            assertArrayEquals(bits(java), bits(out.toFloatArray()), what);
                        }
                    }
                }
            }
        }
    }

    @Test
    void javaDecodedDequantizationsEqualTheDeviceOpsBitForBit() {
        int[][] cases = {{32, 1}, {64, 4097}, {128, 128 * 300 + 77}, {4096, 3 * 4096 + 1}, {64, 64 * 4096}};
        try (NDManager manager = NDManager.newBaseManager()) {
            for (int[] c : cases) {
                float[] data = gaussian(c[1], 7 * c[1]);
                long[] shape = c[1] % 2 == 0 ? new long[] {2, c[1] / 2} : new long[] {c[1]};
                for (QuantType type : QuantType.values()) {
                    for (boolean dq : new boolean[] {false, true}) {
                        BlockwiseQuantizer q = BlockwiseQuantizer.builder()
                                .optType(type).optBlocksize(c[0]).optDoubleQuant(dq).build();
                        QuantizedTensor t = q.quantize(data, shape);
                        String what = type + " blocksize " + c[0] + " n " + c[1] + " dq " + dq;
                        try (NdQuantizedTensor nd = NdQuantizedTensor.upload(t, manager);
                                NdQuantizedTensor other = NdQuantizedTensor.upload(q.quantize(gaussian(c[1], 1), shape),
                                        manager);
                                NDArray ops = nd.dequantizeOnDevice();
                                NDArray owned = nd.dequantize()) {
                            int[] expected = bits(ops.toFloatArray());
                            assertEquals(new Shape(shape), owned.getShape(), what);
                            assertArrayEquals(expected, bits(owned.toFloatArray()), what);
                            try (NDArray scratch = nd.dequantizeTransient(DataType.FLOAT32)) {
                                assertEquals(new Shape(shape), scratch.getShape(), what);
                                assertEquals(DataType.FLOAT32, scratch.getDataType(), what);
                                assertArrayEquals(expected, bits(scratch.toFloatArray()), what);
                            }
                            // the owned copy does not share the scratch another weight's decoding overwrites
                            other.dequantizeTransient(DataType.FLOAT32).close();
                            assertArrayEquals(expected, bits(owned.toFloatArray()), what);
                        }
                    }
                }
            }
        }
    }

    @Test
    void transientDequantizationsShareOneBufferPerThreadAndFloat16GoesThroughTheDevice() {
        BlockwiseQuantizer q = BlockwiseQuantizer.builder().build();
        QuantizedTensor small = q.quantize(gaussian(64 * 40, 8), new long[] {40, 64});
        QuantizedTensor large = q.quantize(gaussian(64 * 80, 9), new long[] {80, 64});
        try (NDManager manager = NDManager.newBaseManager();
                NdQuantizedTensor a = NdQuantizedTensor.upload(small, manager);
                NdQuantizedTensor b = NdQuantizedTensor.upload(large, manager)) {
            float[] first;
            try (NDArray w = a.dequantizeTransient(DataType.FLOAT32)) {
                first = w.toFloatArray();
            }
            try (NDArray w = b.dequantizeTransient(DataType.FLOAT32);
                    NDArray again = a.dequantizeTransient(DataType.FLOAT32)) {
                // a's second dequantization wrote over b's: what was lent before is gone
                assertArrayEquals(first, again.toFloatArray());
                assertFalse(Arrays.equals(q.dequantize(large), w.toFloatArray()));
            }
            assertEquals(ScratchFloats.borrow(1).order(), ByteOrder.nativeOrder());
            try (NDArray half = a.dequantizeTransient(DataType.FLOAT16);
                    NDArray device = a.dequantize(DataType.FLOAT16)) {
                assertEquals(DataType.FLOAT16, half.getDataType());
                assertArrayEquals(device.toFloatArray(), half.toFloatArray());
            }
        }
    }

    private static int[] bits(float[] x) {
        int[] b = new int[x.length];
        for (int i = 0; i < x.length; i++) {
            b[i] = Float.floatToRawIntBits(x[i]);
        }
        return b;
    }

    @Test
    void resultBelongsToTheUploadManagerAndOutlivesTheTensor() {
        float[] data = gaussian(300, 1);
        QuantizedTensor t = BlockwiseQuantizer.builder().build().quantize(data, new long[] {300});
        try (NDManager manager = NDManager.newBaseManager()) {
            NDArray out;
            try (NdQuantizedTensor nd = NdQuantizedTensor.upload(t, manager)) {
                out = nd.dequantize();
            }
            assertSame(manager, out.getManager());
            assertArrayEquals(BlockwiseQuantizer.builder().build().dequantize(t), out.toFloatArray());
        }
    }

    @Test
    void resultIsClosedWithTheCallersScope() {
        QuantizedTensor t = BlockwiseQuantizer.builder().build().quantize(gaussian(200, 2), new long[] {200});
        try (NDManager manager = NDManager.newBaseManager();
                NdQuantizedTensor nd = NdQuantizedTensor.upload(t, manager)) {
            NDArray out;
            try (NDScope scope = new NDScope()) {
                out = nd.dequantize();
                assertFalse(out.isReleased());
            }
            assertTrue(out.isReleased());
        }
    }

    @Test
    void deviceBytesCountPackedCodesScalesAndTables() {
        float[] data = gaussian(65536, 3);
        try (NDManager manager = NDManager.newBaseManager()) {
            QuantizedTensor dq = BlockwiseQuantizer.builder().build().quantize(data, new long[] {256, 256});
            try (NdQuantizedTensor nd = NdQuantizedTensor.upload(dq, manager)) {
                // 32768 packed + 1024 codes + 4 nested * 4 + 2048 byte table + 1024 map + 4 offset
                assertEquals(36884, nd.bytes());
                assertArrayEquals(new long[] {256, 256}, nd.shape());
            }
            QuantizedTensor plain = BlockwiseQuantizer.builder().optDoubleQuant(false).build()
                    .quantize(data, new long[] {65536});
            try (NdQuantizedTensor nd = NdQuantizedTensor.upload(plain, manager)) {
                // 32768 packed + 1024 * 4 absmax + 2048 byte table
                assertEquals(38912, nd.bytes());
            }
        }
    }
}
