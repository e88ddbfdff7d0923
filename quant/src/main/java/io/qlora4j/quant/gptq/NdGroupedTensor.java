package io.qlora4j.quant.gptq;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.core.Embedding;
import io.qlora4j.quant.DeviceWeight;
import io.qlora4j.quant.ScopedResult;
import java.nio.ByteBuffer;

/**
 * A GPTQ or AWQ weight resident on a DJL device and dequantized there per use. DJL has no bitwise ops, so the
 * packed codes stay bytes ({@code bits} per weight) that index small float tables: for 2, 4 and 8 bits one
 * table gives every code a byte holds; for 3 bits each byte of a three-byte run adds its bits to the eight codes
 * the run holds (one table per byte position); AWQ's nibbles go through one table after the host swaps the middle
 * two bytes of every word, which leaves only a fixed transpose of the interleaved order. Zeros stay uint8 and
 * scales float16, gathered per input column through the group index. The result is
 * {@code fp16(scale * (q - zero))}: the float32 product is exact and the cast to float16 rounds it once, to
 * nearest even, as PyTorch does, and as every GPTQ/AWQ kernel's dequantization does.
 */
public final class NdGroupedTensor implements DeviceWeight {
    private final NDManager owner;
    private final NDManager arrays;
    private final int outFeatures;
    private final int inFeatures;
    private final boolean awq;
    private final NDArray bytes;
    private final NDArray[] tables;
    private final NDArray zeros;
    private final NDArray scales;
    private final NDArray groupIndex;

    private NdGroupedTensor(NDManager owner, int out, int in, boolean awq, byte[] packed, long[] bytesShape,
            float[][] tables, int[] zeros, float[] scales, int[] groupIndex) {
        this.owner = owner;
        this.arrays = owner.newSubManager();
        this.outFeatures = out;
        this.inFeatures = in;
        this.awq = awq;
        this.bytes = uint8(packed, new Shape(bytesShape));
        this.tables = new NDArray[tables.length];
        for (int t = 0; t < tables.length; t++) {
            this.tables[t] = arrays.create(tables[t], new Shape(256, tables[t].length / 256));
        }
        byte[] z = new byte[zeros.length];
        for (int i = 0; i < z.length; i++) {
            z[i] = (byte) zeros[i];
        }
        int groups = scales.length / out;
        this.zeros = uint8(z, new Shape(groups, out));
        try (NDArray s = arrays.create(scales, new Shape(groups, out))) {
            this.scales = s.toType(DataType.FLOAT16, false);
        }
        this.groupIndex = arrays.create(groupIndex);
    }

    /** Copies a GPTQ weight to {@code manager}'s device, into a sub-manager freed by {@link #close()}. */
    public static NdGroupedTensor upload(GptqTensor t, NDManager manager) {
        int out = t.outFeatures();
        int rows = t.qweight().length / out;
        // per output, the bytes of its column of words in order: that column's little-endian code stream
        byte[] stream = new byte[rows * 4 * out];
        for (int o = 0; o < out; o++) {
            for (int r = 0; r < rows; r++) {
                int w = t.qweight()[r * out + o];
                for (int j = 0; j < 4; j++) {
                    stream[(o * rows + r) * 4 + j] = (byte) (w >>> (8 * j));
                }
            }
        }
        long[] shape = t.bits() == 3 ? new long[] {out, rows * 4 / 3, 3} : new long[] {out, rows * 4};
        return new NdGroupedTensor(manager, out, t.inFeatures(), false, stream, shape, streamTables(t.bits()),
                t.zeros(), t.scales(), t.groupIndex());
    }

    /** Copies an AWQ weight to {@code manager}'s device, into a sub-manager freed by {@link #close()}. */
    public static NdGroupedTensor upload(AwqTensor t, NDManager manager) {
        int[] q = t.qweight();
        byte[] swapped = new byte[q.length * 4];
        int[] order = {0, 2, 1, 3};
        for (int w = 0; w < q.length; w++) {
            for (int j = 0; j < 4; j++) {
                swapped[w * 4 + j] = (byte) (q[w] >>> (8 * order[j]));
            }
        }
        int[] groupIndex = new int[t.inFeatures()];
        for (int i = 0; i < groupIndex.length; i++) {
            groupIndex[i] = i / t.groupSize();
        }
        float[] nibbles = new float[512];
        for (int b = 0; b < 256; b++) {
            nibbles[2 * b] = b & 15;
            nibbles[2 * b + 1] = b >>> 4;
        }
        return new NdGroupedTensor(manager, t.outFeatures(), t.inFeatures(), true, swapped,
                new long[] {t.inFeatures(), t.outFeatures() / 2}, new float[][] {nibbles}, t.zeros(), t.scales(),
                groupIndex);
    }

    /**
     * Code tables of a {@code bits}-wide stream: for 2, 4 and 8 bits one {@code [256, 8/bits]} table of the codes
     * in a byte; for 3 bits three {@code [256, 8]} tables, table {@code j} holding what byte {@code j} of a
     * three-byte run contributes to each of its eight codes.
     */
    private static float[][] streamTables(int bits) {
        if (8 % bits == 0) {
            int perByte = 8 / bits;
            float[] table = new float[256 * perByte];
            for (int b = 0; b < 256; b++) {
                for (int m = 0; m < perByte; m++) {
                    table[b * perByte + m] = (b >>> (bits * m)) & ((1 << bits) - 1);
                }
            }
            return new float[][] {table};
        }
        float[][] tables = new float[bits][256 * 8];
        for (int j = 0; j < bits; j++) {
            for (int b = 0; b < 256; b++) {
                for (int p = 0; p < 8; p++) {
                    int streamBit = 8 * j + p;
                    tables[j][b * 8 + streamBit / bits] += ((b >>> p) & 1) << (streamBit % bits);
                }
            }
        }
        return tables;
    }

    /**
     * The weight {@code [out, in]} in {@code type}: dequantized to float16 values exactly as the checkpoint's
     * kernels do, then cast (float32 holds them exactly). The result belongs to the manager given to upload and to
     * the innermost open {@link NDScope}.
     */
    @Override
    public NDArray dequantize(DataType type) {
        return ScopedResult.compute(owner, () -> {
            NDArray q = codes();
            NDArray z = gather(zeros.toType(DataType.FLOAT32, false));
            NDArray s = gather(scales.toType(DataType.FLOAT32, false));
            NDArray half = q.sub(z).mul(s).toType(DataType.FLOAT16, false);
            return type == DataType.FLOAT16 ? half : half.toType(type, false);
        });
    }

    /** The codes {@code [out, in]} as float32. */
    private NDArray codes() {
        NDArray index = bytes.toType(DataType.INT32, false);
        if (awq) {
            // [in, out/2, 2]: per word (b0, b2, b1, b3) low/high nibbles = columns 0,2,1,3,4,6,5,7
            NDArray n = lookup(index, tables[0]).reshape(inFeatures, outFeatures / 8, 2, 2, 2)
                    .transpose(0, 1, 2, 4, 3);
            return n.reshape(inFeatures, outFeatures).transpose();
        }
        if (tables.length == 1) {
            return lookup(index, tables[0]).reshape(outFeatures, inFeatures);
        }
        NDArray sum = null;
        for (int j = 0; j < tables.length; j++) {
            NDArray part = lookup(index.get(":, :, " + j), tables[j]);
            sum = sum == null ? part : sum.add(part);
        }
        return sum.reshape(outFeatures, inFeatures);
    }

    /** {@code perGroup [groups, out]} picked for every input column and laid out as {@code [out, in]}. */
    private NDArray gather(NDArray perGroup) {
        return lookup(groupIndex, perGroup).transpose();
    }

    private static NDArray lookup(NDArray index, NDArray table) {
        return Embedding.embedding(index, table, SparseFormat.DENSE).singletonOrThrow();
    }

    /** {@code {out, in}}. */
    @Override
    public long[] shape() {
        return new long[] {outFeatures, inFeatures};
    }

    /** Device bytes held: packed codes, zeros, scales, group index and tables. */
    @Override
    public long bytes() {
        long total = 0;
        for (NDArray a : new NDArray[] {bytes, zeros, scales, groupIndex}) {
            total += a.size() * a.getDataType().getNumOfBytes();
        }
        for (NDArray t : tables) {
            total += t.size() * 4;
        }
        return total;
    }

    /** Frees the device arrays; decoded weights already returned stay valid. */
    @Override
    public void close() {
        arrays.close();
    }

    private NDArray uint8(byte[] data, Shape shape) {
        ByteBuffer buffer = ByteBuffer.allocateDirect(data.length);
        buffer.put(data).rewind();
        return arrays.create(buffer, shape, DataType.UINT8);
    }
}
