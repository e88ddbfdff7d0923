package io.qlora4j.quant.hqq;

import io.qlora4j.quant.HostTensor;
import io.qlora4j.quant.Shapes;
import io.qlora4j.quant.Simd;
import io.qlora4j.quant.SimdFields;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.util.Arrays;
import java.util.Locale;
import java.util.Objects;

/**
 * A weight quantized by HQQ, in the layout HQQ stores it: the codes of the grouped matrix packed by
 * {@link HqqPacking}, and per group the dequantization scale (the inverse of the quantization scale, as HQQ
 * stores it) and the zero point, both float32. Element {@code (r, c)} of the grouped matrix dequantizes to
 * {@code (code - zero[g]) * scale[g]} with {@code g = c} along axis 0 and {@code g = r} along axis 1. Arrays are
 * held, not copied; treat them as read-only.
 *
 * @param params how it was quantized
 * @param shape the weight's shape, row-major
 * @param packed the packed codes, {@code params.packing().packedBytes(rows, cols)} bytes
 * @param scale one dequantization scale per group
 * @param zero one zero point per group
 */
public record HqqTensor(HqqParams params, long[] shape, byte[] packed, float[] scale, float[] zero)
        implements HostTensor {

    /** Columns {@link #decodeRowsSimd} reads and writes per bulk transfer. */
    private static final int SIMD_CHUNK = 1024;

    /** Validates sizes against the shape and the group size, naming the one at fault. */
    public HqqTensor {
        Objects.requireNonNull(params, "params");
        Objects.requireNonNull(shape, "shape");
        Objects.requireNonNull(packed, "packed");
        Objects.requireNonNull(scale, "scale");
        Objects.requireNonNull(zero, "zero");
        long n = Shapes.numel(shape);
        if (n == 0 || n % params.groupSize() != 0) {
            throw new IllegalArgumentException("shape " + Arrays.toString(shape) + " holds " + n
                    + " elements, not a positive multiple of the group size " + params.groupSize());
        }
        long groups = n / params.groupSize();
        long rows = params.axis() == 0 ? params.groupSize() : groups;
        long cols = n / rows;
        params.packing().checkRows(rows);
        long expected = params.packing().packedBytes(rows, cols);
        if (packed.length != expected) {
            throw new IllegalArgumentException("packed codes have " + packed.length + " bytes, expected " + expected
                    + " for " + params.nbits() + "-bit shape " + Arrays.toString(shape) + " in groups of "
                    + params.groupSize() + " along axis " + params.axis());
        }
        if (scale.length != groups || zero.length != groups) {
            throw new IllegalArgumentException("got " + scale.length + " scales and " + zero.length + " zeros, expected "
                    + groups + " of each for shape " + Arrays.toString(shape) + " in groups of " + params.groupSize());
        }
    }

    /** Number of elements. */
    public long numel() {
        return Shapes.numel(shape);
    }

    /** Number of groups, one scale and zero each. */
    public int groups() {
        return Math.toIntExact(numel() / params.groupSize());
    }

    /** Rows of the grouped matrix: the group size along axis 0, the group count along axis 1. */
    public int groupedRows() {
        return params.axis() == 0 ? params.groupSize() : groups();
    }

    /** Columns of the grouped matrix. */
    public int groupedCols() {
        return Math.toIntExact(numel() / groupedRows());
    }

    /** The codes, one per byte, row-major in the grouped matrix (which is the weight's own row-major order). */
    public byte[] codes() {
        return params.packing().unpack(packed, groupedRows(), groupedCols());
    }

    /** The float32 weight, row-major: {@code (code - zero) * scale} per element, as HQQ's float32 dequantization. */
    @Override
    public float[] dequantize() {
        float[] out = new float[Math.toIntExact(numel())];
        int rows = groupedRows();
        decodeWordRows(params, rows, groupedCols(), ByteBuffer.wrap(packed).order(ByteOrder.LITTLE_ENDIAN),
                FloatBuffer.wrap(scale), FloatBuffer.wrap(zero), FloatBuffer.wrap(out), 0,
                Math.toIntExact(params.packing().packedRows(rows)));
        return out;
    }

    /**
     * Writes {@code (code - zero[g]) * scale[g]} (a float32 subtraction, then a float32 multiply) for every code of
     * packed rows {@code [from, to)} of a grouped {@code [rows, cols]} matrix ({@code packed} in little-endian order)
     * into {@code out}, row-major, with {@code g} the column along axis 0 and the row along axis 1. Reads and writes
     * are absolute, so threads may fill disjoint ranges of packed rows of the same buffers. Every packing goes through
     * SIMD lanes where {@link Simd#enabled} holds.
     */
    static void decodeWordRows(HqqParams params, int rows, int cols, ByteBuffer packed, FloatBuffer scale,
            FloatBuffer zero, FloatBuffer out, int from, int to) {
        if (Simd.enabled()) {
            decodeRowsSimd(params, rows, cols, packed, scale, zero, out, from, to);
        } else {
            decodeScalar(params, rows, cols, packed, scale, zero, out, from, to);
        }
    }

    /** {@link #decodeWordRows} one element at a time, for every packing. */
    static void decodeScalar(HqqParams params, int rows, int cols, ByteBuffer packed, FloatBuffer scale,
            FloatBuffer zero, FloatBuffer out, int from, int to) {
        HqqPacking packing = params.packing();
        boolean byColumn = params.axis() == 0;
        for (int p = from; p < to; p++) {
            for (int m = 0; m < packing.codesPerWord() && packing.groupedRow(rows, p, m) < rows; m++) {
                int r = packing.groupedRow(rows, p, m);
                int shift = packing.shift(m);
                int mask = packing.fieldMask();
                int word = p * cols;
                int at = r * cols;
                if (byColumn) {
                    for (int c = 0; c < cols; c++) {
                        out.put(at + c, value(packing.word(packed, word + c), shift, mask, zero.get(c), scale.get(c)));
                    }
                } else {
                    float z = zero.get(r);
                    float s = scale.get(r);
                    for (int c = 0; c < cols; c++) {
                        out.put(at + c, value(packing.word(packed, word + c), shift, mask, z, s));
                    }
                }
            }
        }
    }

    /**
     * {@link #decodeWordRows} through {@link SimdFields}: a chunk of a packed row's columns at a time (one bulk
     * transfer each way; bytes widened to int words once for all their fields), the columns past the last whole step
     * by the scalar {@link #value}.
     */
    static void decodeRowsSimd(HqqParams params, int rows, int cols, ByteBuffer packed, FloatBuffer scale,
            FloatBuffer zero, FloatBuffer out, int from, int to) {
        HqqPacking packing = params.packing();
        boolean byColumn = params.axis() == 0;
        int mask = packing.fieldMask();
        int chunk = Math.min(cols, SIMD_CHUNK);
        IntBuffer ints = packing.int32Words() ? packed.duplicate().order(ByteOrder.LITTLE_ENDIAN).asIntBuffer() : null;
        byte[] bytes = ints == null ? new byte[chunk] : null;
        int[] words = new int[chunk];
        float[] values = new float[chunk];
        float[] zeros = byColumn ? new float[chunk] : null;
        float[] scales = byColumn ? new float[chunk] : null;
        for (int p = from; p < to; p++) {
            for (int c0 = 0; c0 < cols; c0 += chunk) {
                int n = Math.min(chunk, cols - c0);
                int lanes = n - n % SimdFields.STEP;
                if (ints != null) {
                    ints.get(p * cols + c0, words, 0, n);
                } else {
                    packed.get(p * cols + c0, bytes, 0, n);
                    SimdFields.widen(bytes, words, n);
                }
                if (byColumn) {
                    zero.get(c0, zeros, 0, n);
                    scale.get(c0, scales, 0, n);
                }
                for (int m = 0; m < packing.codesPerWord() && packing.groupedRow(rows, p, m) < rows; m++) {
                    int r = packing.groupedRow(rows, p, m);
                    int shift = packing.shift(m);
                    float z = byColumn ? 0 : zero.get(r);
                    float s = byColumn ? 0 : scale.get(r);
                    if (byColumn) {
                        SimdFields.decodeRow(words, shift, mask, zeros, scales, values, lanes);
                    } else {
                        SimdFields.decodeRow(words, shift, mask, z, s, values, lanes);
                    }
                    for (int c = lanes; c < n; c++) {
                        values[c] = value(words[c], shift, mask, byColumn ? zeros[c] : z, byColumn ? scales[c] : s);
                    }
                    out.put(r * cols + c0, values, 0, n);
                }
            }
        }
    }

    /** The field of {@code word} at {@code shift} under {@code mask}, dequantized: {@code (code - zero) * scale}. */
    private static float value(int word, int shift, int mask, float zero, float scale) {
        return ((word >>> shift & mask) - zero) * scale;
    }

    /** Bytes of per-element storage: packed codes plus the float32 scale and zero of every group. */
    @Override
    public long bytes() {
        return packed.length + 8L * scale.length;
    }

    /** {@code 8 * bytes() / numel()}: e.g. 5.0 for 4 bits in groups of 64 (9.0 at 5 and 6 bits, a byte per code). */
    public double bitsPerParameter() {
        return 8.0 * bytes() / numel();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof HqqTensor t
                && params.equals(t.params)
                && Arrays.equals(shape, t.shape)
                && Arrays.equals(packed, t.packed)
                && Arrays.equals(scale, t.scale)
                && Arrays.equals(zero, t.zero);
    }

    @Override
    public int hashCode() {
        int h = params.hashCode();
        h = 31 * h + Arrays.hashCode(shape);
        h = 31 * h + Arrays.hashCode(packed);
        h = 31 * h + Arrays.hashCode(scale);
        return 31 * h + Arrays.hashCode(zero);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT, "HqqTensor[%d-bit, shape=%s, group %d, axis %d, %d bytes, %.3f bits/param]",
                params.nbits(), Arrays.toString(shape), params.groupSize(), params.axis(), bytes(), bitsPerParameter());
    }
}
