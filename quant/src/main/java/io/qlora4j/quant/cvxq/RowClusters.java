package io.qlora4j.quant.cvxq;

import java.util.Arrays;
import java.util.Comparator;
import java.util.stream.IntStream;

/**
 * The rows of a weight {@code [rows, columns]} grouped into clusters of similar sensitivity: CVXQ gives one bit depth
 * to each cluster-by-column partition. The reference ({@code LinearQ.bit_group}) scores each row by
 * {@code log2 var(W[r, :]) + log2 E[g_r^2]} (unbiased variance, the row's mean squared output gradient), sorts the
 * rows by score and cuts the sorted list into {@code clusters} consecutive pieces as {@code torch.tensor_split} does
 * (the first {@code rows % clusters} pieces one row longer). Within a cluster, rows keep ascending row order; a
 * cluster's partitions hold {@link #slots()} elements, the longest cluster's size, shorter clusters being padded.
 *
 * @param clusterOfRow the cluster of each row
 * @param clusters the number of clusters
 */
public record RowClusters(int[] clusterOfRow, int clusters) {

    /** Checks that every row names a cluster in {@code [0, clusters)} and that no cluster is empty. */
    public RowClusters {
        if (clusters < 1 || clusters > clusterOfRow.length) {
            throw new IllegalArgumentException(clusters + " clusters for " + clusterOfRow.length + " rows");
        }
        int[] sizes = new int[clusters];
        for (int c : clusterOfRow) {
            if (c < 0 || c >= clusters) {
                throw new IllegalArgumentException("row cluster " + c + " is not in [0, " + clusters + ")");
            }
            sizes[c]++;
        }
        for (int c = 0; c < clusters; c++) {
            if (sizes[c] == 0) {
                throw new IllegalArgumentException("row cluster " + c + " is empty");
            }
        }
    }

    /** The reference's cluster count for {@code rows} rows and a cluster size: {@code max(rows / groupSize, 1)}. */
    public static int count(int rows, int groupSize) {
        return Math.max(rows / groupSize, 1);
    }

    /** The reference's initial clusters: consecutive rows ({@code arange(rows).reshape(clusters, -1)}, split evenly). */
    public static RowClusters consecutive(int rows, int clusters) {
        return split(IntStream.range(0, rows).toArray(), clusters);
    }

    /** Rows sorted by ascending {@code score} (ties by row), cut into {@code clusters} consecutive pieces. */
    public static RowClusters byScore(double[] score, int clusters) {
        int[] order = IntStream.range(0, score.length).boxed()
                .sorted(Comparator.<Integer>comparingDouble(r -> score[r]).thenComparingInt(r -> r))
                .mapToInt(Integer::intValue).toArray();
        return split(order, clusters);
    }

    private static RowClusters split(int[] order, int clusters) {
        int rows = order.length;
        int[] cluster = new int[rows];
        for (int c = 0; c < clusters; c++) {
            for (int i = start(rows, clusters, c); i < start(rows, clusters, c + 1); i++) {
                cluster[order[i]] = c;
            }
        }
        return new RowClusters(cluster, clusters);
    }

    /** Where piece {@code c} starts in {@code torch.tensor_split(n, pieces)}. */
    private static int start(int n, int pieces, int c) {
        int base = n / pieces;
        int extra = n % pieces;
        return c * base + Math.min(c, extra);
    }

    /** The number of rows. */
    public int rows() {
        return clusterOfRow.length;
    }

    /** The rows of every cluster, each in ascending order. */
    public int[][] members() {
        int[] sizes = new int[clusters];
        for (int c : clusterOfRow) {
            sizes[c]++;
        }
        int[][] members = new int[clusters][];
        for (int c = 0; c < clusters; c++) {
            members[c] = new int[sizes[c]];
        }
        int[] filled = new int[clusters];
        for (int r = 0; r < clusterOfRow.length; r++) {
            int c = clusterOfRow[r];
            members[c][filled[c]++] = r;
        }
        return members;
    }

    /** Elements per partition: the size of the largest cluster. */
    public int slots() {
        int[] sizes = new int[clusters];
        int max = 0;
        for (int c : clusterOfRow) {
            max = Math.max(max, ++sizes[c]);
        }
        return max;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof RowClusters r && clusters == r.clusters && Arrays.equals(clusterOfRow, r.clusterOfRow);
    }

    @Override
    public int hashCode() {
        return 31 * Arrays.hashCode(clusterOfRow) + clusters;
    }

    @Override
    public String toString() {
        return "RowClusters[" + clusterOfRow.length + " rows in " + clusters + " clusters of up to " + slots() + "]";
    }
}
