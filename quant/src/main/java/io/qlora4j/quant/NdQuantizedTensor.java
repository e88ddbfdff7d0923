package io.qlora4j.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.core.Embedding;
import java.nio.ByteBuffer;
import java.util.Arrays;

/**
 * A {@link QuantizedTensor} resident on a DJL device, dequantized there with NDArray ops (DJL has
 * no bitwise ops): the packed bytes, widened to int64, gather rows of a 256x2 float table that
 * hold both nibbles' values, which are multiplied by their block scale. (On libtorch CPU a gather
 * with the index broadcast over the two columns measured faster than indexing the table with an
 * int64 array, and much faster than with an int32 one.) Double-quantized scales stay coded on the
 * device (u8 codes, nested absmax, map, offset) and are decoded there, so the device holds about
 * 4.127 bits per parameter. Results agree bit for bit with {@link BlockwiseQuantizer#dequantize}.
 *
 * <p>The packed codes (and the scale codes) are zero-padded on the device to whole blocks, at
 * most {@code blocksize / 2} (and 255) extra bytes, so that every block reshapes to one row.
 */
public final class NdQuantizedTensor implements DeviceWeight {

    private final NDManager owner;
    private final NDManager arrays;
    private final long[] shape;
    private final long numel;
    private final int blocks;
    private final int blocksize;
    private final int nestedBlocksize;
    private final NDArray packed;
    private final NDArray byteTable;
    private final NDArray absmax;
    private final NDArray codes;
    private final NDArray nestedAbsmax;
    private final NDArray nestedMap;
    private final NDArray offset;

    private NdQuantizedTensor(QuantizedTensor t, NDManager owner) {
        this.owner = owner;
        this.arrays = owner.newSubManager();
        this.shape = t.shape().clone();
        this.numel = t.numel();
        this.blocks = t.blocks();
        this.blocksize = t.blocksize();
        this.packed = uint8(t.packed(), (long) blocks * blocksize / 2);
        this.byteTable = arrays.create(t.type().byteTable(), new Shape(256, 2));
        DoubleQuantizedScales dq = t.doubleQuant();
        this.nestedBlocksize = dq == null ? 0 : dq.nestedBlocksize();
        if (dq == null) {
            this.absmax = arrays.create(t.absmax(), new Shape(blocks, 1));
            this.codes = null;
            this.nestedAbsmax = null;
            this.nestedMap = null;
            this.offset = null;
        } else {
            int nested = dq.nestedAbsmax().length;
            this.absmax = null;
            this.codes = uint8(dq.codes(), (long) nested * dq.nestedBlocksize());
            this.nestedAbsmax = arrays.create(dq.nestedAbsmax(), new Shape(nested, 1));
            this.nestedMap = arrays.create(dq.nestedMap());
            this.offset = arrays.create(dq.offset());
        }
    }

    /**
     * Copies a quantized tensor to {@code manager}'s device. The tensor's arrays live in a
     * sub-manager of {@code manager} and are freed by {@link #close()} or with {@code manager}.
     */
    public static NdQuantizedTensor upload(QuantizedTensor t, NDManager manager) {
        return new NdQuantizedTensor(t, manager);
    }

    /**
     * The float32 tensor of the original shape. Intermediates are freed before returning; the
     * result belongs to the manager given to {@link #upload} and, if one is open on this thread,
     * to the innermost {@link NDScope}. Close it (or let the scope close it) when done.
     */
    public NDArray dequantize() {
        NDArray out;
        try (NDScope scope = new NDScope()) {
            NDArray index = packed.toType(DataType.INT32, false);
            // a row lookup (index_select) runs about 3x faster on libtorch CPU than advanced indexing with get;
            // scaling in place saves a second full-size float temporary
            NDArray pairs = Embedding.embedding(index, byteTable, SparseFormat.DENSE).singletonOrThrow();
            NDArray values = pairs.reshape(blocks, blocksize).muli(scales()).reshape(-1);
            out = prefix(values, numel).reshape(new Shape(shape));
            NDScope.unregister(out);
        }
        NDScope.register(out);
        out.attach(owner);
        return out;
    }

    /**
     * {@link #dequantize()} cast to {@code type}: bitsandbytes dequantizes 4-bit weights in float32 and casts the
     * result to the compute dtype, and so does this.
     */
    @Override
    public NDArray dequantize(DataType type) {
        NDArray w = dequantize();
        if (type == DataType.FLOAT32) {
            return w;
        }
        try (w) {
            return w.toType(type, false);
        }
    }

    /** Device bytes held: packed codes, scales in their stored form, and the lookup tables. */
    @Override
    public long bytes() {
        return DeviceWeight.bytesOf(packed, byteTable, absmax, codes, nestedAbsmax, nestedMap, offset);
    }

    /** The original shape (a copy). */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** Frees the device arrays; results already returned by {@link #dequantize()} stay valid. */
    @Override
    public void close() {
        arrays.close();
    }

    @Override
    public String toString() {
        return "NdQuantizedTensor[shape=" + Arrays.toString(shape) + ", blocksize=" + blocksize
                + (codes != null ? ", double-quantized" : "") + ", " + bytes() + " bytes on "
                + arrays.getDevice() + "]";
    }

    /** The per-block float32 scales, shape [blocks, 1]: decoded on the device when coded. */
    private NDArray scales() {
        if (absmax != null) {
            return absmax;
        }
        NDArray decoded = nestedMap.gather(codes.toType(DataType.INT64, false), 0)
                .reshape(nestedAbsmax.size(), nestedBlocksize)
                .mul(nestedAbsmax)
                .add(offset)
                .reshape(-1);
        return prefix(decoded, blocks).reshape(blocks, 1);
    }

    private static NDArray prefix(NDArray flat, long length) {
        return flat.size() == length ? flat : flat.get(new NDIndex().addSliceDim(0, length));
    }

    private NDArray uint8(byte[] bytes, long paddedLength) {
        ByteBuffer buffer = ByteBuffer.allocateDirect(Math.toIntExact(paddedLength));
        buffer.put(bytes).rewind();
        return arrays.create(buffer, new Shape(paddedLength), DataType.UINT8);
    }
}
