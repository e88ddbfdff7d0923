package io.qlora4j.quant.cvxq;

import io.qlora4j.quant.HostTensor;
import java.util.Arrays;
import java.util.Objects;
import java.util.stream.IntStream;

/**
 * A CVXQ-quantized weight {@code [rows, columns]} in qlora4j's packed layout (docs/CVXQ-FORMAT.md): the rows are
 * grouped into {@link RowClusters}; partition {@code p = c * columns + j} (cluster {@code c}, column {@code j}) has a
 * bit depth {@code depths[p]} (0 to 8), a float16 location {@code locs[p]} and Laplace scale {@code scales[p]}, and
 * one code per slot ({@link RowClusters#slots()} slots: the cluster's rows in ascending order, then zero padding).
 *
 * <p>{@code codes} holds the codes bit plane by bit plane. The partitions are ordered by depth, deepest first (ties
 * in partition order), so the partitions that have a bit {@code k} form a prefix of that order: plane {@code k}
 * (for {@code k = 0, 1, ...}) holds bit {@code k} of every slot of the first {@code P_k} partitions of the order
 * ({@code P_k} = partitions deeper than {@code k}), slot {@code s} of the {@code q}-th partition at position
 * {@code e = q * slots + s}, packed eight positions per byte, position {@code e} in bit {@code e % 8} of byte
 * {@code e / 8}; each plane is padded with zero bits to a whole byte and the planes follow each other. A weight
 * decodes to {@code loc + scale * level(depth, code)} ({@link LaplaceCodebook}) in float32 arithmetic.
 *
 * <p>Arrays are held, not copied; treat them as read-only.
 *
 * @param rows the output features
 * @param columns the input features
 * @param clusters the row clusters
 * @param depths bit depth per partition, {@code clusters * columns} entries
 * @param locs float16 location per partition
 * @param scales float16 Laplace scale per partition
 * @param codes the bit planes
 */
public record CvxqTensor(int rows, int columns, RowClusters clusters, byte[] depths, short[] locs, short[] scales,
        byte[] codes) implements HostTensor {

    /** Checks that the arrays agree with the shape, the depths are 0 to 8 and the planes have the bytes they need. */
    public CvxqTensor {
        Objects.requireNonNull(clusters, "clusters");
        if (rows != clusters.rows() || columns < 1) {
            throw new IllegalArgumentException("shape [" + rows + ", " + columns + "] does not fit " + clusters);
        }
        int partitions = clusters.clusters() * columns;
        if (depths.length != partitions || locs.length != partitions || scales.length != partitions) {
            throw new IllegalArgumentException("expected " + partitions + " depths, locations and scales, got "
                    + depths.length + ", " + locs.length + " and " + scales.length);
        }
        for (byte d : depths) {
            if (d < 0 || d > LaplaceCodebook.MAX_DEPTH) {
                throw new IllegalArgumentException("bit depth " + d + " is not 0 to " + LaplaceCodebook.MAX_DEPTH);
            }
        }
        long expected = codeBytes(depths, clusters.slots());
        if (codes.length != expected) {
            throw new IllegalArgumentException("codes have " + codes.length + " bytes, the depths call for " + expected);
        }
    }

    /**
     * Quantizes {@code weight} (row-major {@code [rows, columns]}) with the given clusters and per-partition depths.
     * Partitions are quantized in parallel; the result does not depend on the thread count.
     */
    public static CvxqTensor quantize(float[] weight, int rows, int columns, RowClusters clusters, byte[] depths,
            PartitionQuantizer quantizer) {
        if (weight.length != (long) rows * columns) {
            throw new IllegalArgumentException("weight has " + weight.length + " values, not " + rows + " x " + columns);
        }
        int partitions = clusters.clusters() * columns;
        int[][] members = clusters.members();
        byte[][] partitionCodes = new byte[partitions][];
        short[] locs = new short[partitions];
        short[] scales = new short[partitions];
        IntStream.range(0, partitions).parallel().forEach(p -> {
            int[] rowsOf = members[p / columns];
            float[] values = gather(weight, columns, rowsOf, p % columns);
            partitionCodes[p] = new byte[rowsOf.length];
            PartitionQuantizer.Decoder d = quantizer.quantize(values, rowsOf.length, depths[p], partitionCodes[p]);
            locs[p] = d.loc();
            scales[p] = d.scale();
        });
        return new CvxqTensor(rows, columns, clusters, depths, locs, scales,
                pack(partitionCodes, depths, clusters.slots()));
    }

    /** {@code log2 S^2} of every partition: the log2 mean square about the lower median ({@link PartitionQuantizer}). */
    public static double[] log2Variances(float[] weight, int columns, RowClusters clusters) {
        int[][] members = clusters.members();
        return IntStream.range(0, clusters.clusters() * columns).parallel().mapToDouble(p -> {
            int[] rowsOf = members[p / columns];
            return PartitionQuantizer.log2Variance(gather(weight, columns, rowsOf, p % columns), rowsOf.length);
        }).toArray();
    }

    private static float[] gather(float[] weight, int columns, int[] rowsOf, int column) {
        float[] values = new float[rowsOf.length];
        for (int i = 0; i < rowsOf.length; i++) {
            values[i] = weight[rowsOf[i] * columns + column];
        }
        return values;
    }

    /** Partitions by depth, deepest first, ties in partition order: the order of the bit planes. */
    static int[] planeOrder(byte[] depths) {
        int[] order = new int[depths.length];
        int q = 0;
        for (int d = LaplaceCodebook.MAX_DEPTH; d >= 0; d--) {
            for (int p = 0; p < depths.length; p++) {
                if (depths[p] == d) {
                    order[q++] = p;
                }
            }
        }
        return order;
    }

    /** {@code deeper[k]}: the partitions deeper than {@code k}, for {@code k = 0 .. 7}. */
    static int[] deeperThan(byte[] depths) {
        int[] deeper = new int[LaplaceCodebook.MAX_DEPTH];
        for (byte d : depths) {
            for (int k = 0; k < d; k++) {
                deeper[k]++;
            }
        }
        return deeper;
    }

    /** Bytes of the bit planes for these depths: {@code sum_k ceil(P_k * slots / 8)}. */
    public static long codeBytes(byte[] depths, int slots) {
        long bytes = 0;
        for (int partitions : deeperThan(depths)) {
            bytes += planeBytes(partitions, slots);
        }
        return bytes;
    }

    static long planeBytes(long partitions, int slots) {
        return (partitions * slots + 7) / 8;
    }

    /**
     * Bytes of everything but the codes: a depth byte, a float16 location and a float16 scale per partition, and the
     * cluster of every row (one byte each up to 256 clusters, else two).
     */
    public static long sideBytes(int rows, int columns, int clusters) {
        return 5L * clusters * columns + (long) rows * clusterIdBytes(clusters);
    }

    /** Bytes per stored row cluster id: 1 up to 256 clusters, else 2. */
    public static int clusterIdBytes(int clusters) {
        return clusters <= 256 ? 1 : 2;
    }

    private static byte[] pack(byte[][] partitionCodes, byte[] depths, int slots) {
        int[] order = planeOrder(depths);
        int[] deeper = deeperThan(depths);
        byte[] packed = new byte[Math.toIntExact(codeBytes(depths, slots))];
        long base = 0;
        for (int k = 0; k < deeper.length && deeper[k] > 0; k++) {
            for (int q = 0; q < deeper[k]; q++) {
                byte[] c = partitionCodes[order[q]];
                for (int s = 0; s < c.length; s++) {
                    if (((c[s] >> k) & 1) != 0) {
                        long bit = base * 8 + (long) q * slots + s;
                        packed[(int) (bit >>> 3)] |= (byte) (1 << (bit & 7));
                    }
                }
            }
            base += planeBytes(deeper[k], slots);
        }
        return packed;
    }

    /** The code of every slot of every partition, {@code [partitions][slots]}, read back from the planes. */
    int[][] unpack() {
        int slots = clusters.slots();
        int[] order = planeOrder(depths);
        int[] deeper = deeperThan(depths);
        int[][] out = new int[depths.length][slots];
        long base = 0;
        for (int k = 0; k < deeper.length && deeper[k] > 0; k++) {
            for (int q = 0; q < deeper[k]; q++) {
                for (int s = 0; s < slots; s++) {
                    long bit = base * 8 + (long) q * slots + s;
                    out[order[q]][s] |= ((codes[(int) (bit >>> 3)] >> (bit & 7)) & 1) << k;
                }
            }
            base += planeBytes(deeper[k], slots);
        }
        return out;
    }

    /** {@code [rows, columns]}. */
    @Override
    public long[] shape() {
        return new long[] {rows, columns};
    }

    /** The decoded weight, row-major {@code [rows, columns]}, as the device decodes it. */
    @Override
    public float[] dequantize() {
        int[][] codesOf = unpack();
        int[][] members = clusters.members();
        float[] w = new float[rows * columns];
        for (int p = 0; p < depths.length; p++) {
            PartitionQuantizer.Decoder d = new PartitionQuantizer.Decoder(locs[p], scales[p]);
            int[] rowsOf = members[p / columns];
            for (int s = 0; s < rowsOf.length; s++) {
                w[rowsOf[s] * columns + p % columns] = d.decode(depths[p], codesOf[p][s]);
            }
        }
        return w;
    }

    /** Number of partitions, {@code clusters * columns}. */
    public int partitions() {
        return depths.length;
    }

    /** Bytes as stored: the bit planes plus {@link #sideBytes} (the layer's bias is not part of the tensor). */
    @Override
    public long bytes() {
        return codes.length + sideBytes(rows, columns, clusters.clusters());
    }

    /** {@code 8 * bytes() / (rows * columns)}. */
    public double bitsPerParameter() {
        return 8.0 * bytes() / ((double) rows * columns);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof CvxqTensor t && rows == t.rows && columns == t.columns && clusters.equals(t.clusters)
                && Arrays.equals(depths, t.depths) && Arrays.equals(locs, t.locs) && Arrays.equals(scales, t.scales)
                && Arrays.equals(codes, t.codes);
    }

    @Override
    public int hashCode() {
        int h = Objects.hash(rows, columns, clusters);
        h = 31 * h + Arrays.hashCode(depths);
        h = 31 * h + Arrays.hashCode(locs);
        h = 31 * h + Arrays.hashCode(scales);
        return 31 * h + Arrays.hashCode(codes);
    }

    @Override
    public String toString() {
        return String.format(java.util.Locale.ROOT, "CvxqTensor[%d x %d, %d clusters, %d bytes, %.3f bits/param]",
                rows, columns, clusters.clusters(), bytes(), bitsPerParameter());
    }
}
