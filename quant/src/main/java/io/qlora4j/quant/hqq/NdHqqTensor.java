package io.qlora4j.quant.hqq;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.core.Embedding;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.Arrays;

/**
 * An {@link HqqTensor} resident on a DJL device in HQQ's own packing, dequantized there with NDArray ops
 * (DJL has no bitwise ops). Byte packings unpack through a lookup table of the {@code 256 x k} code values a byte
 * holds, gathered by the packed bytes and moved so that word row {@code p}'s {@code m}-th code lands on grouped row
 * {@code m * step + p}; 8-bit codes are the bytes themselves; the 3-bit int32 words are split exactly in float64
 * ({@code floor(word / 2^(27 - 3m)) mod 8}). Then {@code (code - zero) * scale} in float32, bit for bit
 * {@link HqqTensor#dequantize()}.
 */
public final class NdHqqTensor implements AutoCloseable {
    private final NDManager owner;
    private final NDManager arrays;
    private final HqqParams params;
    private final long[] shape;
    private final int rows;
    private final int cols;
    private final NDArray packed;
    private final NDArray table;
    private final NDArray scale;
    private final NDArray zero;

    private NdHqqTensor(HqqTensor t, NDManager owner) {
        this.owner = owner;
        this.arrays = owner.newSubManager();
        this.params = t.params();
        this.shape = t.shape().clone();
        this.rows = t.groupedRows();
        this.cols = t.groupedCols();
        HqqPacking packing = params.packing();
        Shape packedShape = new Shape(packing.packedRows(rows), cols);
        ByteBuffer buffer = ByteBuffer.allocateDirect(t.packed().length).order(ByteOrder.nativeOrder());
        if (packing.int32Words()) {
            buffer.asIntBuffer().put(ByteBuffer.wrap(t.packed()).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer());
        } else {
            buffer.put(t.packed()).rewind();
        }
        this.packed = arrays.create(buffer, packedShape, packing.int32Words() ? DataType.INT32 : DataType.UINT8);
        this.table = packing == HqqPacking.BYTE || packing.int32Words() ? null : byteTable(packing);
        Shape metaShape = params.axis() == 0 ? new Shape(1, cols) : new Shape(rows, 1);
        this.scale = arrays.create(t.scale(), metaShape);
        this.zero = arrays.create(t.zero(), metaShape);
    }

    /**
     * Copies an HQQ tensor to {@code manager}'s device. Its arrays live in a sub-manager of {@code manager} and are
     * freed by {@link #close()} or with {@code manager}.
     */
    public static NdHqqTensor upload(HqqTensor t, NDManager manager) {
        return new NdHqqTensor(t, manager);
    }

    /**
     * The float32 weight of the original shape. Intermediates are freed before returning; the result belongs to the
     * manager given to {@link #upload} and, if one is open on this thread, to the innermost {@link NDScope}.
     */
    public NDArray dequantize() {
        NDArray out;
        try (NDScope scope = new NDScope()) {
            out = codes().subi(zero).muli(scale).reshape(new Shape(shape));
            NDScope.unregister(out);
        }
        NDScope.register(out);
        out.attach(owner);
        return out;
    }

    /** Device bytes held: packed codes, float32 scales and zeros, and the byte table. */
    public long bytes() {
        long total = 0;
        for (NDArray a : new NDArray[] {packed, table, scale, zero}) {
            if (a != null) {
                total += a.size() * a.getDataType().getNumOfBytes();
            }
        }
        return total;
    }

    /** The weight's shape (a copy). */
    public long[] shape() {
        return shape.clone();
    }

    /** How the tensor was quantized. */
    public HqqParams params() {
        return params;
    }

    /** Frees the device arrays; results already returned by {@link #dequantize()} stay valid. */
    @Override
    public void close() {
        arrays.close();
    }

    @Override
    public String toString() {
        return "NdHqqTensor[" + params.nbits() + "-bit, shape=" + Arrays.toString(shape) + ", " + bytes() + " bytes on "
                + arrays.getDevice() + "]";
    }

    /** The codes as float32, grouped {@code [rows, cols]}. */
    private NDArray codes() {
        HqqPacking packing = params.packing();
        if (packing == HqqPacking.BYTE) {
            return packed.toType(DataType.FLOAT32, false);
        }
        if (packing.int32Words()) {
            return threeBitCodes();
        }
        NDArray index = packed.toType(DataType.INT32, false);
        NDArray values = Embedding.embedding(index, table, SparseFormat.DENSE).singletonOrThrow();
        return values.transpose(2, 0, 1).reshape(rows, cols);
    }

    /** The ten 3-bit fields of each int32 word, highest first, split exactly in float64; padding rows dropped. */
    private NDArray threeBitCodes() {
        int words = Math.toIntExact(packed.getShape().get(0));
        NDArray wide = packed.toType(DataType.FLOAT64, false);
        NDList fields = new NDList();
        for (int m = 0; m < HqqPacking.THREE_BIT.codesPerWord(); m++) {
            NDArray upper = wide.mul(Math.scalb(1.0, -(27 - 3 * m))).floor();
            fields.add(upper.sub(upper.mul(0.125).floor().mul(8)));
        }
        NDArray all = NDArrays.stack(fields).reshape((long) 10 * words, cols);
        return all.get(new NDIndex().addSliceDim(0, rows)).toType(DataType.FLOAT32, false);
    }

    /** Entry {@code [b, m]}: the {@code m}-th code (highest bits first) of byte {@code b}. */
    private NDArray byteTable(HqqPacking packing) {
        int k = packing.codesPerWord();
        int bits = packing.fieldBits();
        float[] values = new float[256 * k];
        for (int b = 0; b < 256; b++) {
            for (int m = 0; m < k; m++) {
                values[b * k + m] = (b >>> (bits * (k - 1 - m))) & ((1 << bits) - 1);
            }
        }
        return arrays.create(values, new Shape(256, k));
    }
}
