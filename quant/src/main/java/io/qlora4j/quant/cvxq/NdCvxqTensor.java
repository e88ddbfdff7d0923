package io.qlora4j.quant.cvxq;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.core.Embedding;
import io.qlora4j.quant.DeviceWeight;
import io.qlora4j.quant.DirectBuffers;
import io.qlora4j.quant.HalfFloats;
import io.qlora4j.quant.ScopedResult;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * A {@link CvxqTensor} resident on a DJL device and dequantized there with NDArray ops (DJL has no bitwise ops):
 * each bit plane's bytes gather rows of a 256 x 8 table of their bits, the planes are summed with weights
 * {@code 2^k} into the codes of the partitions in plane order (a plane covers a prefix of that order, the rest is
 * zero), {@code 2^depth + code} indexes the {@link LaplaceCodebook} table, and {@code loc + scale * level} is put back
 * into partition order, then into {@code [rows, columns]} through the row clusters. Results agree bit for bit with
 * {@link CvxqTensor#dequantize()}.
 *
 * <p>The device holds the packed bit planes and, per partition, the float16 location and scale, {@code 2^depth}
 * (float16) and its position in plane order (int32): 10 bytes per partition where the file has 5; per row an int32
 * slot index.
 */
public final class NdCvxqTensor implements DeviceWeight {
    private final NDManager owner;
    private final NDManager arrays;
    private final int rows;
    private final int columns;
    private final int clusters;
    private final int slots;
    private final int partitions;
    private final int[] deeper;
    private final NDArray codes;
    private final NDArray bitTable;
    private final NDArray levels;
    private final NDArray locs;
    private final NDArray scales;
    private final NDArray base;
    private final NDArray planePosition;
    private final NDArray rowSlot;

    private NdCvxqTensor(CvxqTensor t, NDManager owner) {
        this.owner = owner;
        this.arrays = owner.newSubManager();
        this.rows = t.rows();
        this.columns = t.columns();
        this.clusters = t.clusters().clusters();
        this.slots = t.clusters().slots();
        this.partitions = t.partitions();
        this.deeper = CvxqTensor.deeperThan(t.depths());
        int codeBytes = Math.max(1, t.codes().length);
        this.codes = arrays.create(DirectBuffers.of(t.codes(), codeBytes), new Shape(codeBytes), DataType.UINT8);
        this.bitTable = arrays.create(bits(), new Shape(256, 8));
        this.levels = arrays.create(LaplaceCodebook.table(), new Shape(LaplaceCodebook.TABLE.length, 1));
        int[] order = CvxqTensor.planeOrder(t.depths());
        short[] loc = new short[partitions];
        short[] scale = new short[partitions];
        short[] pow = new short[partitions];
        int[] position = new int[partitions];
        for (int q = 0; q < partitions; q++) {
            int p = order[q];
            loc[q] = t.locs()[p];
            scale[q] = t.scales()[p];
            pow[q] = HalfFloats.floatToF16(1 << t.depths()[p]);
            position[p] = q;
        }
        Shape column = new Shape(partitions, 1);
        this.locs = float16(loc, column);
        this.scales = float16(scale, column);
        this.base = float16(pow, column);
        this.planePosition = arrays.create(position);
        int[][] members = t.clusters().members();
        int[] slotOfRow = new int[rows];
        for (int c = 0; c < clusters; c++) {
            for (int s = 0; s < members[c].length; s++) {
                slotOfRow[members[c][s]] = c * slots + s;
            }
        }
        this.rowSlot = arrays.create(slotOfRow);
        NDScope.unregister(codes, bitTable, levels, locs, scales, base, planePosition, rowSlot);
    }

    /**
     * Copies {@code t} to {@code manager}'s device, in a sub-manager freed by {@link #close()} or with the manager (not
     * by an {@code NDScope} open during the upload: a weight uploaded for a product outlives it).
     */
    public static NdCvxqTensor upload(CvxqTensor t, NDManager manager) {
        return new NdCvxqTensor(t, manager);
    }

    private NDArray float16(short[] values, Shape shape) {
        ByteBuffer buffer = ByteBuffer.allocateDirect(2 * values.length).order(ByteOrder.nativeOrder());
        buffer.asShortBuffer().put(values);
        return arrays.create(buffer, shape, DataType.FLOAT16);
    }

    private static float[] bits() {
        float[] table = new float[256 * 8];
        for (int b = 0; b < 256; b++) {
            for (int i = 0; i < 8; i++) {
                table[b * 8 + i] = (b >> i) & 1;
            }
        }
        return table;
    }

    /**
     * The weight {@code [rows, columns]} as {@code type}: decoded in float32 (the format's definition), then cast
     * (float16 for a float16 model). Intermediates are freed as the decode goes; the result belongs to the manager
     * given to {@link #upload} and to the innermost open {@code NDScope}.
     */
    @Override
    public NDArray dequantize(DataType type) {
        return ScopedResult.compute(owner, () -> {
            NDArray code = planeCodes();
            NDArray index = code.addi(base.toType(DataType.FLOAT32, false)).toType(DataType.INT32, false).reshape(-1);
            code.close();
            NDArray values = gather(index, levels).reshape(partitions, slots);
            index.close();
            values.muli(scales.toType(DataType.FLOAT32, false)).addi(locs.toType(DataType.FLOAT32, false));
            NDArray ordered = gather(planePosition, values);
            values.close();
            NDArray slotsByRow = ordered.reshape(clusters, columns, slots).transpose(0, 2, 1)
                    .reshape(clusters * slots, columns);
            ordered.close();
            NDArray w = gather(rowSlot, slotsByRow);
            return type == DataType.FLOAT32 ? w : w.toType(type, false);
        });
    }

    /** The code of every slot, {@code [partitions, slots]} in plane order, as float32. */
    private NDArray planeCodes() {
        NDManager m = codes.getManager();
        NDArray sum = null;
        long offset = 0;
        for (int k = 0; k < deeper.length && deeper[k] > 0; k++) {
            long bytes = CvxqTensor.planeBytes(deeper[k], slots);
            long n = (long) deeper[k] * slots;
            NDArray plane = codes.get(new NDIndex().addSliceDim(offset, offset + bytes));
            NDArray index = plane.toType(DataType.INT32, false);
            plane.close();
            NDArray bits = gather(index, bitTable).reshape(-1);
            index.close();
            NDArray used = bits.size() == n ? bits : bits.get(new NDIndex().addSliceDim(0, n));
            NDArray weighted = used.reshape(deeper[k], slots).muli(m.create((float) (1 << k)));
            if (deeper[k] < partitions) {
                NDArray zeros = m.zeros(new Shape(partitions - deeper[k], slots));
                NDArray full = NDArrays.concat(new ai.djl.ndarray.NDList(weighted, zeros));
                zeros.close();
                weighted.close();
                weighted = full;
            }
            if (used != bits) {
                used.close();
            }
            bits.close();
            if (sum == null) {
                sum = weighted;
            } else {
                sum.addi(weighted);
                weighted.close();
            }
            offset += bytes;
        }
        return sum != null ? sum : m.zeros(new Shape(partitions, slots));
    }

    private static NDArray gather(NDArray index, NDArray table) {
        return Embedding.embedding(index, table, SparseFormat.DENSE).singletonOrThrow();
    }

    /** Device bytes held: bit planes, per-partition parameters, indices and the two tables. */
    @Override
    public long bytes() {
        return DeviceWeight.bytesOf(codes, bitTable, levels, locs, scales, base, planePosition, rowSlot);
    }

    @Override
    public long[] shape() {
        return new long[] {rows, columns};
    }

    /** Frees the device arrays; results already returned by {@link #dequantize} stay valid. */
    @Override
    public void close() {
        arrays.close();
    }
}
