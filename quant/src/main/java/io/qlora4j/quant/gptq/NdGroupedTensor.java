package io.qlora4j.quant.gptq;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.ndarray.types.SparseFormat;
import ai.djl.nn.core.Embedding;
import io.qlora4j.quant.DeviceWeight;
import io.qlora4j.quant.DirectBuffers;
import io.qlora4j.quant.HalfFloats;
import io.qlora4j.quant.HostDecoding;
import io.qlora4j.quant.ScopedResult;
import io.qlora4j.quant.Simd;
import io.qlora4j.quant.SimdNibbles;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;
import java.nio.IntBuffer;
import java.nio.ShortBuffer;

/**
 * A GPTQ or AWQ weight resident on a DJL device and dequantized there per use. DJL has no bitwise ops, so the
 * packed codes stay bytes ({@code bits} per weight) that index small float tables: for 2, 4 and 8 bits one
 * table gives every code a byte holds; for 3 bits each byte of a three-byte run adds its bits to the eight codes
 * the run holds (one table per byte position); AWQ's nibbles go through one table after the host swaps the middle
 * two bytes of every word, which leaves only a fixed transpose of the interleaved order. Zeros stay uint8 and
 * scales float16, gathered per input column through the group index. The result is
 * {@code fp16(scale * (q - zero))}: the float32 product is exact and the cast to float16 rounds it once, to
 * nearest even, as PyTorch does, and as every GPTQ/AWQ kernel's dequantization does.
 *
 * <p>On a CPU a float32 weight is decoded by Java instead ({@link HostDecoding}), from the memory the device arrays
 * hold: per output row a table of every code's float16 value in every group, then one lookup per element (AWQ eight
 * output rows at a time, the rows one packed word spans), 16 lookups at a time in SIMD lanes where {@link Simd} runs
 * them (4-bit codes whose groups of inputs are in order and a multiple of 16 long). One 5632 x 2048 4-bit weight in
 * groups of 128 took 16 to 18 ms (GPTQ) and 21 to 23 ms (AWQ) into the scratch buffer against 71 to 98 ms for the
 * ops, before the SIMD lanes (docs/BENCHMARKS.md).
 */
public final class NdGroupedTensor implements DeviceWeight {
    /**
     * The output row, within its word's eight, of each of an AWQ word's nibbles (little-endian, two per byte): byte
     * {@code k}'s low nibble is row {@code 4(k/2) + k%2}, its high nibble two rows further.
     */
    private static final int[] AWQ_ROW = {0, 2, 1, 3, 4, 6, 5, 7};
    /** Input rows an AWQ decoding reads per pass over its words: 256 rows of an 11008-wide weight are 1.4 MB. */
    private static final int AWQ_TILE = 256;

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
    /** Java's decoding of the weight on a CPU, else null. */
    private final HostDecoding host;
    /** On a CPU, the code stream, zeros, float16 scales and group index as Java reads them (the arrays' memory). */
    private final ByteBuffer hostStream;
    private final ByteBuffer hostZeros;
    private final ShortBuffer hostScales;
    private final IntBuffer hostGroups;
    /**
     * The group size {@link SimdNibbles} decodes GPTQ rows or AWQ words by where it runs; 0 where the scalar loop
     * does.
     */
    private final int simdGroupSize;

    private NdGroupedTensor(NDManager owner, int out, int in, boolean awq, byte[] packed, long[] bytesShape,
            float[][] tables, int[] zeros, float[] scales, int[] groupIndex) {
        this.owner = owner;
        this.arrays = owner.newSubManager();
        this.outFeatures = out;
        this.inFeatures = in;
        this.awq = awq;
        ByteBuffer stream = DirectBuffers.of(packed, packed.length);
        this.bytes = arrays.create(stream, new Shape(bytesShape), DataType.UINT8);
        this.tables = new NDArray[tables.length];
        for (int t = 0; t < tables.length; t++) {
            this.tables[t] = arrays.create(tables[t], new Shape(256, tables[t].length / 256));
        }
        byte[] z = new byte[zeros.length];
        for (int i = 0; i < z.length; i++) {
            z[i] = (byte) zeros[i];
        }
        int groups = scales.length / out;
        ByteBuffer zeroBytes = DirectBuffers.of(z, z.length);
        this.zeros = arrays.create(zeroBytes, new Shape(groups, out), DataType.UINT8);
        try (NDArray s = arrays.create(scales, new Shape(groups, out))) {
            this.scales = s.toType(DataType.FLOAT16, false);
        }
        this.groupIndex = arrays.create(groupIndex);
        boolean java = HostDecoding.readable(arrays);
        this.hostStream = java ? stream : null;
        this.hostZeros = java ? zeroBytes : null;
        this.hostScales = java ? this.scales.toByteBuffer(true).order(ByteOrder.nativeOrder()).asShortBuffer() : null;
        this.hostGroups = java ? this.groupIndex.toByteBuffer(true).order(ByteOrder.nativeOrder()).asIntBuffer() : null;
        this.host = !java ? null : awq ? new HostDecoding(owner, shape(), out / 8, 8 * in, this::decodeAwqWords)
                : new HostDecoding(owner, shape(), out, in, this::decodeRows);
        this.simdGroupSize = java && Simd.enabled() && packed.length == out * in / 2 ? simdGroupSize(groupIndex, groups)
                : 0;
        if (simdGroupSize > 0) {
            Simd.warmUpNibbles(); // once per JVM, while the model loads (the load's heap collection follows)
        }
    }

    /**
     * The group size of a 4-bit weight whose inputs fall in groups in order ({@code g_idx[i] = i / size}, no act-order)
     * of a whole number of {@link SimdNibbles#STEP}s: what {@link SimdNibbles} decodes a group at a time; else 0.
     */
    private static int simdGroupSize(int[] groupIndex, int groups) {
        int size = groupIndex.length / groups;
        if (size % SimdNibbles.STEP != 0 || size * groups != groupIndex.length) {
            return 0;
        }
        for (int i = 0; i < groupIndex.length; i++) {
            if (groupIndex[i] != i / size) {
                return 0;
            }
        }
        return size;
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
        return host == null || type != DataType.FLOAT32 ? dequantizeOnDevice(type) : host.owned();
    }

    /**
     * On a CPU in float32, the weight decoded by Java into this thread's scratch buffer ({@link HostDecoding}),
     * the float16 values of the ops; otherwise {@link #dequantize}.
     */
    @Override
    public NDArray dequantizeTransient(DataType type) {
        return host == null || type != DataType.FLOAT32 ? dequantize(type) : host.intoScratch();
    }

    /**
     * Output rows {@code [from, to)} of a GPTQ weight decoded by Java: for each row, every code's value in every
     * group, {@code fp16((code - zero) * scale)} (the float32 product rounded once to float16, as the ops do), then
     * one table lookup per element, 16 at a time in SIMD lanes where {@link #simdGroupSize} allows; other 4-bit rows
     * (act-order) read their codes from a copy of the row and each input's group from a copy of the group index.
     * Writes are absolute, so threads may fill disjoint row ranges.
     */
    private void decodeRows(FloatBuffer out, int from, int to) {
        int rowBytes = hostStream.capacity() / outFeatures;
        int bits = rowBytes * 8 / inFeatures;
        int codes = 1 << bits;
        int mask = codes - 1;
        int groups = hostZeros.capacity() / outFeatures;
        float[] table = new float[groups * codes];
        float[] row = new float[inFeatures];
        byte[] rowCodes = simdGroupSize > 0 || bits == 4 ? new byte[rowBytes + SimdNibbles.CODES_SLACK] : null;
        int[] tableAt = null; // 4 bits in Java's loop: where each input's group starts in the table
        if (simdGroupSize == 0 && bits == 4) {
            tableAt = new int[inFeatures];
            hostGroups.get(0, tableAt);
            for (int i = 0; i < inFeatures; i++) {
                tableAt[i] *= codes;
            }
        }
        for (int o = from; o < to; o++) {
            for (int g = 0; g < groups; g++) {
                fillValues(table, g * codes, g, o, codes);
            }
            if (simdGroupSize > 0) {
                hostStream.get(o * rowBytes, rowCodes, 0, rowBytes);
                SimdNibbles.decode(rowCodes, table, groups, simdGroupSize, false, row);
            } else if (tableAt != null) { // act-order, or groups SIMD cannot take: codes from an array, low nibble first
                hostStream.get(o * rowBytes, rowCodes, 0, rowBytes);
                for (int i = 0; i < inFeatures; i++) {
                    row[i] = table[tableAt[i] + ((rowCodes[i >>> 1] >>> ((i & 1) << 2)) & 15)];
                }
            } else {
                for (int i = 0; i < inFeatures; i++) {
                    int bit = i * bits;
                    int at = o * rowBytes + (bit >>> 3);
                    int shift = bit & 7;
                    int word = hostStream.get(at) & 0xFF;
                    if (shift + bits > 8) {
                        word |= (hostStream.get(at + 1) & 0xFF) << 8;
                    }
                    row[i] = table[hostGroups.get(i) * codes + ((word >>> shift) & mask)];
                }
            }
            out.put(o * inFeatures, row, 0, inFeatures);
        }
    }

    /**
     * Words {@code [from, to)} of an AWQ weight decoded by Java, eight output rows each: swapped byte {@code 2a + b}
     * of word {@code w} at input {@code i} holds, in its low and high nibble ({@code h}), the codes of output {@code
     * 8w + 4a + 2h + b} (the order the ops' transpose makes), looked up in a table per group as for GPTQ. The inputs go
     * a tile of {@link #AWQ_TILE} packed rows at a time, every word of the range over one tile before the next, so that
     * the tile's bytes are read from memory once (a word per input row of 4 * out / 8 bytes: word by word over all the
     * rows, each cache line came from memory once per word it holds). Where {@link #simdGroupSize} allows, the tile's
     * words of the range are first copied out column by column, and each nibble of a column is looked up 16 inputs at
     * a time in SIMD lanes ({@link SimdNibbles#decodeField}), a group's part of the tile per call.
     */
    private void decodeAwqWords(FloatBuffer out, int from, int to) {
        int rowBytes = outFeatures / 2;
        int tile = Math.min(AWQ_TILE, inFeatures);
        float[] table = new float[tile * 8 * 16]; // at most one group per input of the tile
        float[][] rows = new float[8][tile];
        ByteBuffer words = hostStream.duplicate().order(ByteOrder.LITTLE_ENDIAN);
        int width = to - from;
        int[] columns = simdGroupSize > 0 ? new int[tile * width] : null; // the tile's words, column by column
        int[] row = simdGroupSize > 0 ? new int[width] : null;
        IntBuffer ints = simdGroupSize > 0 ? words.asIntBuffer() : null;
        for (int i0 = 0; i0 < inFeatures; i0 += tile) {
            int n = Math.min(tile, inFeatures - i0);
            int first = hostGroups.get(i0);
            int last = hostGroups.get(i0 + n - 1);
            if (columns != null) {
                transposeWords(ints, i0, n, from, row, columns);
            }
            for (int w = from; w < to; w++) {
                for (int g = first; g <= last; g++) {
                    for (int j = 0; j < 8; j++) {
                        fillValues(table, ((g - first) * 8 + j) * 16, g, 8 * w + j, 16);
                    }
                }
                if (columns != null) {
                    for (int g = first; g <= last; g++) { // the group's inputs within the tile, in SIMD lanes
                        int lo = Math.max(i0, g * simdGroupSize) - i0;
                        int count = Math.min(i0 + n, (g + 1) * simdGroupSize) - i0 - lo;
                        for (int nibble = 0; nibble < 8; nibble++) {
                            int j = AWQ_ROW[nibble];
                            SimdNibbles.decodeField(columns, (w - from) * n + lo, 4 * nibble, table,
                                    ((g - first) * 8 + j) * 16, rows[j], lo, count);
                        }
                    }
                } else {
                    for (int i = 0; i < n; i++) {
                        int base = (hostGroups.get(i0 + i) - first) * 8 * 16;
                        int word = words.getInt((i0 + i) * rowBytes + 4 * w);
                        for (int nibble = 0; nibble < 8; nibble++) { // of byte nibble / 2: low when even, else high
                            int j = AWQ_ROW[nibble];
                            rows[j][i] = table[base + j * 16 + ((word >>> (4 * nibble)) & 15)];
                        }
                    }
                }
                for (int j = 0; j < 8; j++) {
                    out.put((8 * w + j) * inFeatures + i0, rows[j], 0, n);
                }
            }
        }
    }

    /**
     * Copies words {@code [from, from + row.length)} of input rows {@code [i0, i0 + n)} into {@code columns}, each
     * word's column of {@code n} inputs after the previous one: the contiguous runs {@link SimdNibbles#decodeField}
     * reads. Goes through {@code row}, one input row's words at a time.
     */
    private void transposeWords(IntBuffer ints, int i0, int n, int from, int[] row, int[] columns) {
        for (int i = 0; i < n; i++) {
            ints.get((i0 + i) * (outFeatures / 8) + from, row, 0, row.length);
            for (int c = 0; c < row.length; c++) {
                columns[c * n + i] = row[c];
            }
        }
    }

    /**
     * Writes into {@code table} from {@code at} the value of each of {@code codes} codes of output {@code o} in group
     * {@code g}: {@code fp16((code - zero) * scale)}, the float32 product rounded once to float16.
     */
    private void fillValues(float[] table, int at, int g, int o, int codes) {
        float scale = HalfFloats.f16ToFloat(hostScales.get(g * outFeatures + o));
        int zero = hostZeros.get(g * outFeatures + o) & 0xFF;
        for (int q = 0; q < codes; q++) {
            table[at + q] = HalfFloats.roundToF16((q - zero) * scale);
        }
    }

    /** {@link #dequantize} with NDArray ops on the device: what a GPU runs, and a CPU when a test asks. */
    NDArray dequantizeOnDevice(DataType type) {
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
        return DeviceWeight.bytesOf(bytes, zeros, scales, groupIndex) + DeviceWeight.bytesOf(tables);
    }

    /** Frees the device arrays; decoded weights already returned stay valid. */
    @Override
    public void close() {
        arrays.close();
    }
}
