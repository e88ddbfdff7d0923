package io.qlora4j.quant.aqlm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.util.Arrays;
import java.util.Random;

/**
 * Lloyd's k-means as {@code aqlm}'s {@code fit_kmeans} runs it: centroids start at distinct data points drawn at
 * random (repeated ones fill in when there are more centroids than points), nearest centroids come from
 * {@code argmax(x . c - |c|^2 / 2)} on the device, a centroid moves to the mean of its points and keeps its place
 * when it has none, and the loop stops after {@code maxIter} rounds or when, checked every tenth round, no
 * centroid moved by more than {@code 1e-8 + 1e-6 |c|}.
 */
final class KMeans {
    /** Distances computed at once, at most (points x centroids). */
    private static final long BLOCK = 1 << 24;

    /** Centroids {@code [k, dim]} row-major and the nearest centroid of every point. */
    record Fit(float[] centroids, int[] nearest) {}

    private KMeans() {}

    static Fit fit(float[] data, int dim, int k, int maxIter, Random rnd, NDManager manager) {
        int n = data.length / dim;
        float[] centroids = new float[k * dim];
        int[] order = new int[n];
        for (int i = 0; i < n; i++) {
            order[i] = i;
        }
        for (int c = 0; c < k; c++) {
            int pick;
            if (c < n) {
                int j = c + rnd.nextInt(n - c);
                pick = order[j];
                order[j] = order[c];
                order[c] = pick;
            } else {
                pick = rnd.nextInt(n);
            }
            System.arraycopy(data, pick * dim, centroids, c * dim, dim);
        }
        try (NDManager m = manager.newSubManager()) {
            NDArray points = m.create(data, new Shape(n, dim));
            int[] nearest = nearest(points, centroids, k, dim);
            for (int iter = 0; iter < maxIter; iter++) {
                float[] next = means(data, dim, nearest, centroids, k);
                boolean converged = iter % 10 == 0 && close(next, centroids);
                centroids = next;
                nearest = nearest(points, centroids, k, dim);
                if (converged) {
                    break;
                }
            }
            return new Fit(centroids, nearest);
        }
    }

    /** The nearest centroid of every point, blocks of points at a time. */
    static int[] nearest(NDArray points, float[] centroids, int k, int dim) {
        int n = Math.toIntExact(points.getShape().get(0));
        int[] nearest = new int[n];
        try (NDManager m = points.getManager().newSubManager()) {
            NDArray c = m.create(centroids, new Shape(k, dim));
            NDArray halfNorms = c.square().sum(new int[] {1}).mul(0.5f);
            NDArray ct = c.transpose();
            int rows = (int) Math.max(1, BLOCK / k);
            for (int from = 0; from < n; from += rows) {
                int to = Math.min(n, from + rows);
                try (NDManager block = m.newSubManager()) {
                    NDArray x = points.get(from + ":" + to);
                    x.attach(block);
                    NDArray best = x.matMul(ct).sub(halfNorms).argMax(1);
                    long[] idx = best.toLongArray();
                    for (int i = 0; i < idx.length; i++) {
                        nearest[from + i] = (int) idx[i];
                    }
                }
            }
        }
        return nearest;
    }

    private static float[] means(float[] data, int dim, int[] nearest, float[] old, int k) {
        double[] sums = new double[k * dim];
        int[] counts = new int[k];
        for (int p = 0; p < nearest.length; p++) {
            int c = nearest[p];
            counts[c]++;
            for (int d = 0; d < dim; d++) {
                sums[c * dim + d] += data[p * dim + d];
            }
        }
        float[] next = Arrays.copyOf(old, old.length);
        for (int c = 0; c < k; c++) {
            if (counts[c] > 0) {
                for (int d = 0; d < dim; d++) {
                    next[c * dim + d] = (float) (sums[c * dim + d] / counts[c]);
                }
            }
        }
        return next;
    }

    private static boolean close(float[] a, float[] b) {
        for (int i = 0; i < a.length; i++) {
            if (Math.abs(a[i] - b[i]) > 1e-8 + 1e-6 * Math.abs(b[i])) {
                return false;
            }
        }
        return true;
    }
}
