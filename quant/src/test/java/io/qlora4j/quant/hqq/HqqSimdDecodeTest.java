package io.qlora4j.quant.hqq;


import io.qlora4j.quant.DecodeChecks;
import io.qlora4j.quant.Simd;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Random;
import org.junit.jupiter.api.Assumptions;
import org.junit.jupiter.api.Test;

/**
 * HQQ's packings (1, 2, 3, 4 and 8 bits; 3 bits in int32 words, rows padded to ten) decoded in SIMD lanes ({@code SimdFields}) and by the scalar loop, each against the grouped
 * matrix computed element by element from {@link HqqPacking#unpack}'s codes: {@code (code - zero[g]) * scale[g]} in
 * float32, {@code g} the column along axis 0 and the row along axis 1. Column counts with and without a partial last
 * step of 16, and past one bulk transfer's 1,024 columns. The quant module's tests run with the Vector API module.
 */
class HqqSimdDecodeTest {
    @Test
    void lanesAndScalarLoopDecodeEveryPackingOnBothAxes() {
        Random random = new Random(11);
        for (int bits : new int[] {1, 2, 3, 4, 8}) {
            HqqPacking packing = HqqPacking.forBits(bits);
            for (int axis : new int[] {0, 1}) {
                for (int[] size : new int[][] {{8, 64}, {16, 72}, {8, 40}, {16, 2096}, {24, 40}, {40, 48}}) {
                    int rows = size[0];
                    int cols = size[1];
                    HqqParams params = new HqqParams(bits, 8, axis, false, false);
                    byte[] codes = new byte[rows * cols];
                    for (int i = 0; i < codes.length; i++) {
                        codes[i] = (byte) random.nextInt(1 << bits);
                    }
                    byte[] packed = packing.pack(codes, rows, cols);
                    int groups = axis == 0 ? cols : rows;
                    float[] scale = new float[groups];
                    float[] zero = new float[groups];
                    for (int g = 0; g < groups; g++) {
                        scale[g] = (float) random.nextGaussian() * 0.01f;
                        zero[g] = random.nextFloat() * (1 << bits);
                    }
                    float[] expected = new float[rows * cols];
                    byte[] unpacked = packing.unpack(packed, rows, cols);
                    for (int r = 0; r < rows; r++) {
                        for (int c = 0; c < cols; c++) {
                            int g = axis == 0 ? c : r;
                            expected[r * cols + c] = ((unpacked[r * cols + c] & 0xFF) - zero[g]) * scale[g];
                        }
                    }
                    ByteBuffer words = ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN);
                    int packedRows = (int) packing.packedRows(rows);
                    String what = bits + "-bit, axis " + axis + ", " + rows + " x " + cols;
                    FloatBuffer simd = DecodeChecks.unwritten(rows * cols);
                    HqqTensor.decodeRowsSimd(params, rows, cols, words, FloatBuffer.wrap(scale),
                            FloatBuffer.wrap(zero), simd, 0, packedRows);
                    DecodeChecks.assertBits(expected, simd, what + " in lanes");
                    FloatBuffer scalar = DecodeChecks.unwritten(rows * cols);
                    HqqTensor.decodeScalar(params, rows, cols, words, FloatBuffer.wrap(scale), FloatBuffer.wrap(zero),
                            scalar, 0, packedRows);
                    DecodeChecks.assertBits(expected, scalar, what + " scalar");
                }
            }
        }
    }

    /** Once warmed up, HQQ's kernel is compiled ({@link DecodeChecks#assertCompiledAfterWarmUp}). */
    @Test
    void aWarmedUpKernelAllocatesNothingPerRow() {
        Assumptions.assumeTrue(Simd.enabled(), Simd.describe());
        int rows = 64;
        int cols = 1 << 14;
        HqqParams params = HqqParams.llamaFactory(4);
        ByteBuffer words = ByteBuffer.allocateDirect(rows * cols / 2).order(ByteOrder.LITTLE_ENDIAN);
        FloatBuffer scale = FloatBuffer.allocate(cols);
        FloatBuffer zero = FloatBuffer.allocate(cols);
        FloatBuffer out = DecodeChecks.unwritten(rows * cols);
        DecodeChecks.assertCompiledAfterWarmUp(Simd.warmUpFields(), () -> HqqTensor.decodeRowsSimd(params, rows,
                cols, words, scale, zero, out, 0, rows / 2), rows * cols);
    }
}
