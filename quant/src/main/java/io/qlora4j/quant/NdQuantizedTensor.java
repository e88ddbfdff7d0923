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
import java.nio.FloatBuffer;
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
 *
 * <p>On a CPU the device arrays of codes and scales are the direct buffers this class fills (DJL wraps a direct
 * buffer without copying it there), so Java reads them too: a {@linkplain #dequantizeTransient transient
 * dequantization} decodes them on the caller's threads into {@link ScratchFloats}, the same float32 multiply per
 * element as {@link BlockwiseQuantizer#dequantize}, without the three full-size arrays (int32 indices, looked-up
 * pairs, the scaled result) the NDArray ops allocate. On a GPU every dequantization runs there.
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
    /** The packed codes as Java reads them on a CPU (the memory {@link #packed} wraps), else null. */
    private final ByteBuffer hostCodes;
    /** Each block's scale, read from the same memory as the device arrays on a CPU, else null. */
    private final BlockwiseQuantizer.BlockScale hostScales;
    /** The 16 values of the codes, as Java decodes them. */
    private final float[] codebook;
    /** Java's decoding of the weight on a CPU, else null. */
    private final HostDecoding host;

    private NdQuantizedTensor(QuantizedTensor t, NDManager owner) {
        this.owner = owner;
        this.arrays = owner.newSubManager();
        this.shape = t.shape().clone();
        this.numel = t.numel();
        this.blocks = t.blocks();
        this.blocksize = t.blocksize();
        this.codebook = t.type().codebook();
        boolean cpu = HostDecoding.readable(arrays);
        if (cpu) {
            Simd.warmUpNibbles(); // once per JVM, while the model loads (the load's heap collection follows)
        }
        ByteBuffer codeBytes = DirectBuffers.of(t.packed(), (long) blocks * blocksize / 2);
        this.packed = arrays.create(codeBytes, new Shape(codeBytes.capacity()), DataType.UINT8);
        this.hostCodes = cpu ? codeBytes : null;
        this.byteTable = arrays.create(t.type().byteTable(), new Shape(256, 2));
        DoubleQuantizedScales dq = t.doubleQuant();
        this.nestedBlocksize = dq == null ? 0 : dq.nestedBlocksize();
        if (dq == null) {
            ByteBuffer scaleBytes = DirectBuffers.of(t.absmax());
            this.absmax = arrays.create(scaleBytes, new Shape(blocks, 1), DataType.FLOAT32);
            this.codes = null;
            this.nestedAbsmax = null;
            this.nestedMap = null;
            this.offset = null;
            this.hostScales = cpu ? scaleBytes.asFloatBuffer()::get : null;
        } else {
            int nested = dq.nestedAbsmax().length;
            this.absmax = null;
            ByteBuffer scaleCodes = DirectBuffers.of(dq.codes(), (long) nested * dq.nestedBlocksize());
            this.codes = arrays.create(scaleCodes, new Shape(scaleCodes.capacity()), DataType.UINT8);
            this.nestedAbsmax = arrays.create(dq.nestedAbsmax(), new Shape(nested, 1));
            this.nestedMap = arrays.create(dq.nestedMap());
            this.offset = arrays.create(dq.offset());
            float[] map = dq.nestedMap();
            float[] nestedScales = dq.nestedAbsmax();
            float mean = dq.offset();
            int perNested = dq.nestedBlocksize();
            this.hostScales = cpu
                    ? b -> DoubleQuantizedScales.decode(map, scaleCodes.get(b), nestedScales[b / perNested], mean)
                    : null;
        }
        this.host = cpu ? new HostDecoding(owner, shape, blocks, blocksize, this::decodeBlocks) : null;
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
     * to the innermost {@link NDScope}. Close it (or let the scope close it) when done. On a CPU it is decoded by
     * Java straight into an array of its own ({@link HostDecoding#owned}: one fresh array instead of the NDArray ops'
     * three); on a GPU, {@link #dequantizeOnDevice}.
     */
    public NDArray dequantize() {
        return host == null ? dequantizeOnDevice() : host.owned();
    }

    /** {@link #dequantize()} with NDArray ops on the device: what a GPU runs, and a CPU when a test asks. */
    NDArray dequantizeOnDevice() {
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

    /**
     * On a CPU in float32: the weight decoded by Java into this thread's {@link ScratchFloats}, wrapped without a copy,
     * valid until the next dequantization on this thread ({@link DeviceWeight#dequantizeTransient}); the values are
     * {@link #dequantizeOnDevice()}'s bit for bit. Otherwise {@link #dequantize(DataType)}.
     */
    @Override
    public NDArray dequantizeTransient(DataType type) {
        return host == null || type != DataType.FLOAT32 ? dequantize(type) : host.intoScratch();
    }

    /** Blocks {@code [from, to)} decoded by Java from the host view of the codes and scales. */
    private void decodeBlocks(FloatBuffer out, int from, int to) {
        BlockwiseQuantizer.dequantizeBlocks(hostCodes, hostScales, codebook, blocksize, Math.toIntExact(numel),
                out, from, to);
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
}
