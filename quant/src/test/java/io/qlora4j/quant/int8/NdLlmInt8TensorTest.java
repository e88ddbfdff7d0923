package io.qlora4j.quant.int8;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.HalfFloats;
import java.util.Random;
import org.junit.jupiter.api.Test;

/** The device form dequantizes to exactly the host's float32 weight, and to its float16 rounding for float16. */
class NdLlmInt8TensorTest {
    @Test
    void deviceDequantizationEqualsTheHostsBitForBitInFloat32AndRoundsOnceToFloat16() {
        Random random = new Random(3);
        float[] w = new float[24 * 40];
        for (int i = 0; i < w.length; i++) {
            w[i] = (float) random.nextGaussian();
        }
        LlmInt8Tensor t = LlmInt8Quantizer.quantize(FloatSource.<RuntimeException>of(w), new long[] {24, 40});
        float[] host = t.dequantize();
        try (NDManager m = NDManager.newBaseManager(); NdLlmInt8Tensor device = NdLlmInt8Tensor.upload(t, m)) {
            try (NDArray f32 = device.dequantize(DataType.FLOAT32)) {
                assertArrayEquals(new long[] {24, 40}, f32.getShape().getShape());
                assertArrayEquals(host, f32.toFloatArray());
            }
            try (NDArray f16 = device.dequantize(DataType.FLOAT16); NDArray wide = f16.toType(DataType.FLOAT32, false)) {
                float[] got = wide.toFloatArray();
                for (int i = 0; i < host.length; i++) {
                    assertEquals(HalfFloats.f16ToFloat(HalfFloats.floatToF16(host[i])), got[i], "element " + i);
                }
            }
            assertEquals(24 * 40 + 24 * 4, device.bytes());
        }
    }

    @Test
    void codesAndRowFactorsUploadAsCodeTimesFactor() {
        byte[] codes = {-128, 127, 0, 3, -2, 1};
        float[] factors = {0.5f, 0x1p-7f};
        try (NDManager m = NDManager.newBaseManager();
                NdLlmInt8Tensor device = NdLlmInt8Tensor.upload(codes, factors, new long[] {2, 3}, m);
                NDArray w = device.dequantize(DataType.FLOAT32)) {
            assertArrayEquals(new float[] {-64f, 63.5f, 0f, 3f / 128, -2f / 128, 1f / 128}, w.toFloatArray());
        }
    }

    @Test
    void codesThatDoNotFitTheShapeAreRefused() {
        try (NDManager m = NDManager.newBaseManager()) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> NdLlmInt8Tensor.upload(new byte[5], new float[2], new long[] {2, 3}, m));
            assertEquals("5 codes and 2 row factors do not make a weight of shape [2, 3]", e.getMessage());
        }
    }
}
