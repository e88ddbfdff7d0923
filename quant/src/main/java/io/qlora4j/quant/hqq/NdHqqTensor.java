package io.qlora4j.quant.hqq;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.core.Embedding;
import io.qlora4j.quant.DeviceWeight;
import io.qlora4j.quant.DirectBuffers;
import io.qlora4j.quant.HostDecoding;
import io.qlora4j.quant.ScopedResult;
import io.qlora4j.quant.Simd;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.util.Arrays;

/**
 * An {@link HqqTensor} resident on a DJL device in HQQ's own packing, dequantized there with NDArray ops
 * (DJL has no bitwise ops). The packed words stay bytes (an int32 word of the 3-bit packing is four); each byte
 * indexes a table of the {@code k} codes' bits it carries (the {@code m}-th code of a word at index {@code m}; the
 * four bytes of a 3-bit word each contribute their bits, and the contributions add up to the codes), and the codes
 * are moved so that word row {@code p}'s {@code m}-th code lands on grouped row {@code m * step + p}. 8-bit codes are
 * the bytes themselves. Then {@code (code - zero) * scale} in the compute dtype, as HQQ's {@code dequantize} does
 * with its metadata cast to that dtype: in float32 bit for bit {@link HqqTensor#dequantize()}.
 *
 * <p>On a CPU, float32 weights of packed codes (1 to 4 bits) are decoded by Java instead ({@link HostDecoding}), from
 * the same direct buffers the device arrays wrap and with the same float32 operations, so the bits are the ops' bits:
 * one 5632 x 2048 weight at 4 bits took 8 ms into the scratch buffer against 23 ms for the ops (docs/BENCHMARKS.md).
 * Codes of a byte each (5, 6 and 8 bits) the ops widen in one pass, as fast as Java; a GPU runs the ops.
 */
public final class NdHqqTensor implements DeviceWeight {
    private final NDManager owner;
    private final NDManager arrays;
    private final HqqParams params;
    private final long[] shape;
    private final int rows;
    private final int cols;
    private final NDArray packed;
    private final NDArray table;
    private final NDArray offsets;
    private final NDArray scale;
    private final NDArray zero;
    /**
     * The packed codes (little-endian), scales and zeros as Java reads them on a CPU (the memory the arrays wrap), for
     * packed codes; else null.
     */
    private final ByteBuffer hostPacked;
    private final FloatBuffer hostScale;
    private final FloatBuffer hostZero;
    /** Java's decoding of the weight, where {@link #hostPacked} is set; else null. */
    private final HostDecoding host;

    private NdHqqTensor(HqqTensor t, NDManager owner) {
        this.owner = owner;
        this.arrays = owner.newSubManager();
        this.params = t.params();
        this.shape = t.shape().clone();
        this.rows = t.groupedRows();
        this.cols = t.groupedCols();
        HqqPacking packing = params.packing();
        int wordBytes = packing.int32Words() ? 4 : 1;
        ByteBuffer buffer = DirectBuffers.of(t.packed(), t.packed().length);
        this.packed = arrays.create(buffer, new Shape(packing.packedRows(rows), cols, wordBytes), DataType.UINT8);
        boolean lookup = packing != HqqPacking.BYTE;
        this.table = lookup ? byteTable(packing, wordBytes) : null;
        this.offsets = lookup && wordBytes > 1 ? arrays.arange(0, 256 * wordBytes, 256, DataType.INT32) : null;
        Shape metaShape = params.axis() == 0 ? new Shape(1, cols) : new Shape(rows, 1);
        ByteBuffer scaleBytes = DirectBuffers.of(t.scale());
        ByteBuffer zeroBytes = DirectBuffers.of(t.zero());
        this.scale = arrays.create(scaleBytes, metaShape, DataType.FLOAT32);
        this.zero = arrays.create(zeroBytes, metaShape, DataType.FLOAT32);
        // bytes (8, 6 and 5 bits) the ops widen in one pass, faster than Java; packed codes Java decodes faster
        boolean java = HostDecoding.readable(arrays) && packing != HqqPacking.BYTE;
        this.hostPacked = java ? buffer.duplicate().order(ByteOrder.LITTLE_ENDIAN) : null;
        this.hostScale = java ? scaleBytes.asFloatBuffer() : null;
        this.hostZero = java ? zeroBytes.asFloatBuffer() : null;
        if (java) {
            Simd.warmUpFields(); // once per JVM, while the model loads (the load's heap collection follows)
        }
        this.host = java ? new HostDecoding(owner, shape, Math.toIntExact(packing.packedRows(rows)),
                packing.codesPerWord() * cols, this::decodeWordRows) : null;
    }

    /**
     * Copies an HQQ tensor to {@code manager}'s device. Its arrays live in a sub-manager of {@code manager} and are
     * freed by {@link #close()} or with {@code manager}.
     */
    public static NdHqqTensor upload(HqqTensor t, NDManager manager) {
        return new NdHqqTensor(t, manager);
    }

    /**
     * The weight of the original shape as {@code type}: codes minus zero, times scale, in float16 for float16 (HQQ's
     * order with a float16 compute dtype), else in float32 and cast. Intermediates are freed before returning; the
     * result belongs to the manager given to {@link #upload} and, if one is open on this thread, to the innermost
     * {@link NDScope}.
     */
    @Override
    public NDArray dequantize(DataType type) {
        return host == null || type != DataType.FLOAT32 ? dequantizeOnDevice(type) : host.owned();
    }

    /**
     * On a CPU in float32: the weight decoded by Java into this thread's scratch buffer ({@link HostDecoding}), the
     * same float32 subtraction and multiply per element as the NDArray ops; otherwise {@link #dequantize}.
     */
    @Override
    public NDArray dequantizeTransient(DataType type) {
        return host == null || type != DataType.FLOAT32 ? dequantize(type) : host.intoScratch();
    }

    /** {@link #dequantize(DataType)} with NDArray ops on the device: what a GPU runs, and a CPU when a test asks. */
    NDArray dequantizeOnDevice(DataType type) {
        return ScopedResult.compute(owner, () -> {
            DataType compute = type == DataType.FLOAT16 ? DataType.FLOAT16 : DataType.FLOAT32;
            NDArray w = codes(compute).subi(zero.toType(compute, false)).muli(scale.toType(compute, false));
            return w.reshape(new Shape(shape)).toType(type, false);
        });
    }

    /** Packed rows {@code [from, to)} decoded by Java from the host view of the codes, scales and zeros. */
    private void decodeWordRows(FloatBuffer out, int from, int to) {
        HqqTensor.decodeWordRows(params, rows, cols, hostPacked, hostScale, hostZero, out, from, to);
    }

    /** The float32 weight of the original shape ({@link #dequantize(DataType)} in float32). */
    public NDArray dequantize() {
        return dequantize(DataType.FLOAT32);
    }

    /** Device bytes held: packed codes, float32 scales and zeros, and the byte table. */
    @Override
    public long bytes() {
        return DeviceWeight.bytesOf(packed, table, offsets, scale, zero);
    }

    /** The weight's shape (a copy). */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** How the tensor was quantized. */
    public HqqParams params() {
        return params;
    }

    /** Frees the device arrays; results already returned by {@link #dequantize} stay valid. */
    @Override
    public void close() {
        arrays.close();
    }

    @Override
    public String toString() {
        return "NdHqqTensor[" + params.nbits() + "-bit, shape=" + Arrays.toString(shape) + ", " + bytes() + " bytes on "
                + arrays.getDevice() + "]";
    }

    /** The codes as {@code type}, grouped {@code [rows, cols]}. */
    private NDArray codes(DataType type) {
        if (table == null) {
            return packed.reshape(rows, cols).toType(type, false);
        }
        HqqPacking packing = params.packing();
        int k = packing.codesPerWord();
        long words = packed.getShape().get(0);
        NDArray index = packed.toType(DataType.INT32, false);
        if (offsets != null) {
            index = index.add(offsets);
        }
        NDArray values = Embedding.embedding(index, table, SparseFormat.DENSE).singletonOrThrow();
        if (offsets != null) {
            values = values.sum(new int[] {2});
        }
        NDArray grouped = values.reshape(words, cols, k).transpose(2, 0, 1).reshape(k * words, cols);
        if (k * words > rows) {
            grouped = grouped.get(new NDIndex().addSliceDim(0, rows));
        }
        return grouped.toType(type, false);
    }

    /**
     * Entry {@code [256 j + b, m]}: the bits that byte {@code j} (little-endian) of a word, being {@code b}, gives
     * the word's {@code m}-th code (highest bits first).
     */
    private NDArray byteTable(HqqPacking packing, int wordBytes) {
        int k = packing.codesPerWord();
        int bits = packing.fieldBits();
        float[] values = new float[256 * wordBytes * k];
        for (int j = 0; j < wordBytes; j++) {
            for (int b = 0; b < 256; b++) {
                long word = (long) b << (8 * j);
                for (int m = 0; m < k; m++) {
                    values[(j * 256 + b) * k + m] = (word >>> (bits * (k - 1 - m))) & ((1 << bits) - 1);
                }
            }
        }
        return arrays.create(values, new Shape(256L * wordBytes, k));
    }
}
