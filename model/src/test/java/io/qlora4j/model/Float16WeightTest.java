package io.qlora4j.model;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.quant.HalfFloats;
import java.nio.ShortBuffer;
import java.nio.file.Path;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class Float16WeightTest {
    private static final int ROWS = 11;
    private static final int COLS = 6;

    @TempDir
    Path dir;

    /** bfloat16 values whose rows differ in magnitude by up to 2^60, with an all-zero row and tiny entries. */
    private static float[] bf16Matrix(long seed) {
        Random random = new Random(seed);
        float[] w = new float[ROWS * COLS];
        for (int r = 0; r < ROWS; r++) {
            for (int c = 0; c < COLS; c++) {
                float v = r == 4 ? 0f : (float) (random.nextGaussian() * Math.scalb(1.0, 6 * r - 30));
                w[r * COLS + c] = HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(v));
            }
        }
        // 2^-30 below its row's magnitude (about 2^-18): a float16 subnormal after scaling, still exact
        w[2 * COLS + 1] = Math.scalb(1.5f, -18 - 30);
        return w;
    }

    private Float16Weight write(float[] values, DType dtype, NDManager m, int chunkElements) throws Exception {
        Path file = dir.resolve("w-" + dtype);
        try (SafetensorsWriter writer = SafetensorsWriter.builder(file).build()) {
            writer.addFloats("w", dtype, new long[] {ROWS, COLS}, values);
        }
        try (SafetensorsReader reader = SafetensorsReader.open(file)) {
            return Float16Weight.read(reader, "w", null, m, chunkElements);
        }
    }

    @Test
    void bfloat16RowsOfAnyMagnitudeComeBackExactly() throws Exception {
        float[] w = bf16Matrix(1);
        try (NDManager m = NDManager.newBaseManager()) {
            Float16Weight weight = write(w, DType.BF16, m, 2 * COLS);
            NDArray ids = m.create(new long[] {3, 0, 10, 4, 2, 2}, new Shape(2, 3));
            float[] rows = weight.lookup(ids).toFloatArray();
            long[] order = ids.toLongArray();
            for (int i = 0; i < order.length; i++) {
                for (int c = 0; c < COLS; c++) {
                    assertEquals(w[(int) order[i] * COLS + c], rows[i * COLS + c], "row " + order[i]);
                }
            }
            assertEquals(ROWS * COLS * 2L + ROWS * 4L, weight.bytes());
        }
    }

    @Test
    void productsInRowChunksMatchFloat64() throws Exception {
        float[] w = bf16Matrix(2);
        Random random = new Random(3);
        float[] x = gaussians(random, 2 * COLS);
        float[] g = gaussians(random, 2 * ROWS);
        for (int chunk : new int[] {COLS, 4 * COLS, ROWS * COLS}) {
            try (NDManager m = NDManager.newBaseManager()) {
                Float16Weight weight = write(w, DType.BF16, m, chunk);
                float[] y = weight.forward(m.create(x, new Shape(2, COLS))).toFloatArray();
                float[] dx = weight.inputGradient(m.create(g, new Shape(2, ROWS))).toFloatArray();
                assertProducts(x, w, COLS, ROWS, y);
                assertProducts(g, transpose(w), ROWS, COLS, dx);
            }
        }
    }

    /**
     * The weight widened on the Java heap is the checkpoint's bfloat16 values bit for bit (subnormal codes and an
     * all-zero row included), read in whole and partial row chunks, and the device widening's bits.
     */
    @Test
    void weightFloatsAreTheCheckpointValuesAtAnyChunkSize() throws Exception {
        float[] w = bf16Matrix(8);
        for (int chunk : new int[] {COLS, 4 * COLS, ROWS * COLS}) {
            try (NDManager m = NDManager.newBaseManager()) {
                Float16Weight weight = write(w, DType.BF16, m, chunk);
                float[] floats = weight.weightFloats();
                assertArrayEquals(w, floats);
                assertArrayEquals(weight.withWeight(DataType.FLOAT32, NDArray::toFloatArray), floats);
            }
        }
    }

    /**
     * Products through a hold (every row chunk widened once) are the bits of the products without one, and both the
     * float64 products; a second hold while one lasts holds nothing, and products go on after the hold is closed.
     */
    @Test
    void heldProductsAreTheBitsOfProductsWithoutAHold() throws Exception {
        float[] w = bf16Matrix(6);
        Random random = new Random(7);
        float[] x = gaussians(random, 2 * COLS);
        float[] g = gaussians(random, 2 * ROWS);
        for (int chunk : new int[] {COLS, 4 * COLS, ROWS * COLS}) {
            try (NDManager m = NDManager.newBaseManager()) {
                Float16Weight weight = write(w, DType.BF16, m, chunk);
                NDArray input = m.create(x, new Shape(2, COLS));
                NDArray grad = m.create(g, new Shape(2, ROWS));
                float[] y = weight.forward(input).toFloatArray();
                float[] dx = weight.inputGradient(grad).toFloatArray();
                assertEquals(ROWS * COLS * 4L, weight.heldBytes(DataType.FLOAT32));
                try (WeightHold hold = weight.hold(DataType.FLOAT32)) {
                    assertSame(WeightHold.NONE, weight.hold(DataType.FLOAT32));
                    float[] heldY = weight.forward(input).toFloatArray();
                    float[] heldDx = weight.inputGradient(grad).toFloatArray();
                    assertArrayEquals(y, heldY);
                    assertArrayEquals(dx, heldDx);
                    assertProducts(x, w, COLS, ROWS, heldY);
                    assertProducts(g, transpose(w), ROWS, COLS, heldDx);
                }
                assertArrayEquals(y, weight.forward(input).toFloatArray());
            }
        }
    }

    private static float[] gaussians(Random random, int n) {
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = (float) random.nextGaussian();
        }
        return v;
    }

    /** {@code actual [2, out]} against {@code x [2, in] w^T} ({@code w [out, in]}) in float64. */
    private static void assertProducts(float[] x, float[] w, int in, int out, float[] actual) {
        for (int b = 0; b < 2; b++) {
            for (int o = 0; o < out; o++) {
                double expected = 0;
                double magnitude = 0;
                for (int i = 0; i < in; i++) {
                    expected += (double) x[b * in + i] * w[o * in + i];
                    magnitude += Math.abs((double) x[b * in + i] * w[o * in + i]);
                }
                assertEquals(expected, actual[b * out + o], 1e-6 * magnitude, "[" + b + "," + o + "]");
            }
        }
    }

    private static float[] transpose(float[] w) {
        float[] t = new float[w.length];
        for (int r = 0; r < ROWS; r++) {
            for (int c = 0; c < COLS; c++) {
                t[c * ROWS + r] = w[r * COLS + c];
            }
        }
        return t;
    }

    @Test
    void float32ValuesWithMoreThanElevenSignificantBitsAreRefused() throws Exception {
        float[] w = bf16Matrix(4);
        w[7] = 1f + 0x1p-20f;
        try (NDManager m = NDManager.newBaseManager()) {
            assertNull(write(w, DType.F32, m, 2 * COLS));
        }
    }

    @Test
    void rowScaleKeepsTheLargestMagnitudeBelowFloat16Overflow() {
        float[] scales = new float[1];
        ShortBuffer out = ShortBuffer.allocate(3);
        assertTrue(Float16Weight.encodeRow(new float[] {65504f * 4, -1f, 0f}, 0, 3, out, scales, 0));
        assertEquals(Math.scalb(1f, 17 - 14), scales[0]); // 262016 = 1.999 * 2^17 scaled to 1.999 * 2^14
        assertEquals(Math.scalb(1.999f, 14), HalfFloats.f16ToFloat(out.get(0)), 8f);
        float[] zero = new float[1];
        assertTrue(Float16Weight.encodeRow(new float[] {0f, -0f}, 0, 2, ShortBuffer.allocate(2), zero, 0));
        assertEquals(1f, zero[0]);
        // a row spanning more than float16's exact range, infinities and NaN have no exact form
        assertFalse(Float16Weight.encodeRow(new float[] {1f, 0x1p-40f}, 0, 2, ShortBuffer.allocate(2), scales, 0));
        assertFalse(Float16Weight.encodeRow(new float[] {Float.POSITIVE_INFINITY}, 0, 1, ShortBuffer.allocate(1),
                scales, 0));
        assertFalse(Float16Weight.encodeRow(new float[] {Float.NaN}, 0, 1, ShortBuffer.allocate(1), scales, 0));
    }

    @Test
    void float32InputsOnlyAreWidenedToTheirOwnType() throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            Float16Weight weight = write(bf16Matrix(5), DType.BF16, m, 2 * COLS);
            NDArray y = weight.forward(m.ones(new Shape(1, COLS)));
            assertEquals(DataType.FLOAT32, y.getDataType());
            assertArrayEquals(new long[] {1, ROWS}, y.getShape().getShape());
        }
    }
}
