package io.qlora4j.adapters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.Random;

/**
 * The leading {@code r} singular triplets {@code W ~ U diag(s) V^T} of a weight {@code W [m, n]}: what PiSSA and LoftQ
 * decompose. DJL 0.36 has no SVD, eigen or QR routine (neither {@code NDArray} nor its JNI exposes libtorch's
 * {@code linalg}), so the large products run on the weight's device and the small decompositions in float64 on the
 * host:
 * <ul>
 *   <li>{@link #exact}: the Gram matrix of the smaller side ({@code W^T W} or {@code W W^T}, float64 on the device),
 *       its eigen-decomposition ({@link SymmetricEigen}), and the other side's vectors as {@code W v / s}: the top
 *       {@code r} of {@code torch.linalg.svd} to float64 accuracy, at {@code O(min(m, n)^3)} host flops;</li>
 *   <li>{@link #randomized}: the method of torch's {@code svd_lowrank(W, q=r, niter)} (Halko et al. 2009,
 *       algorithm 5.1, with {@code niter} power iterations, each product orthonormalised), the products in float32 on
 *       the device, the orthonormalisations (Gram-Schmidt, twice) and the final {@code r x r} problem in float64 on
 *       the host. It always sketches the row space of W (the range of {@code W^T}), where torch sketches the longer
 *       side's (W's own range for a tall weight), and its Gaussian sketch comes from {@link Random}, not torch's
 *       generator: the factors equal PEFT's only as far as the iteration has converged, with the same expected
 *       error.</li>
 * </ul>
 * Temporaries are created in the manager of {@code w}: callers pass a weight held in a scope they close.
 *
 * @param u {@code [m][r]} left singular vectors as columns
 * @param s the singular values, largest first
 * @param v {@code [n][r]} right singular vectors as columns
 */
record TruncatedSvd(double[][] u, double[] s, double[][] v) {

    /** The top {@code r} triplets of {@code w} (float32 {@code [m, n]}) from an exact decomposition. */
    static TruncatedSvd exact(NDArray w, int r) {
        int m = Math.toIntExact(w.getShape().get(0));
        int n = Math.toIntExact(w.getShape().get(1));
        boolean right = n <= m; // decompose the Gram matrix of the smaller side
        NDArray w64 = w.toType(DataType.FLOAT64, false);
        NDArray small = right ? w64 : w64.transpose();
        int k = right ? n : m;
        NDArray gram = small.transpose().matMul(small);
        double[] flat = gram.toDoubleArray();
        double[][] g = new double[k][];
        for (int i = 0; i < k; i++) {
            g[i] = java.util.Arrays.copyOfRange(flat, i * k, (i + 1) * k);
        }
        SymmetricEigen eigen = SymmetricEigen.of(g);
        int keep = Math.min(r, k);
        double[] s = new double[r];
        double[] basis = new double[keep * k];
        for (int i = 0; i < keep; i++) {
            s[i] = Math.sqrt(Math.max(eigen.values()[i], 0));
            System.arraycopy(eigen.vectors()[i], 0, basis, i * k, k);
        }
        // the other side's vectors: (W v_i) / s_i, or (W^T u_i) / s_i; zero for a zero singular value
        NDArray projected = (right ? w64 : w64.transpose()).matMul(w.getManager().create(basis, new Shape(keep, k))
                .transpose());
        double[][] other = rows(projected.toDoubleArray(), right ? m : n, keep, r);
        for (double[] row : other) {
            for (int i = 0; i < keep; i++) {
                row[i] = s[i] == 0 ? 0 : row[i] / s[i];
            }
        }
        double[][] known = new double[k][r];
        for (int i = 0; i < keep; i++) {
            for (int j = 0; j < k; j++) {
                known[j][i] = eigen.vectors()[i][j];
            }
        }
        return right ? new TruncatedSvd(other, s, known) : new TruncatedSvd(known, s, other);
    }

    /**
     * The top {@code r} triplets of {@code w} by the method of torch's {@code svd_lowrank(w, q=r, niter)}, sketching
     * the row space with a Gaussian drawn from {@code random}; exact when {@code r >= min(m, n)}, where no sketch is
     * smaller.
     */
    static TruncatedSvd randomized(NDArray w, int r, int niter, Random random) {
        int m = Math.toIntExact(w.getShape().get(0));
        int n = Math.toIntExact(w.getShape().get(1));
        if (r >= Math.min(m, n)) {
            return exact(w, r);
        }
        NDArray wt = w.transpose();
        float[] sketch = new float[m * r];
        for (int i = 0; i < sketch.length; i++) {
            sketch[i] = (float) random.nextGaussian();
        }
        NDArray q = orthonormal(wt.matMul(w.getManager().create(sketch, new Shape(m, r))));
        for (int i = 0; i < niter; i++) {
            q = orthonormal(wt.matMul(orthonormal(w.matMul(q))));
        }
        // B = W Q [m, r] = U_b diag(s) V_b^T, so W ~ U_b diag(s) (Q V_b)^T
        TruncatedSvd b = thin(rows(w.matMul(q).toFloatArray(), m, r));
        return new TruncatedSvd(b.u(), b.s(), multiply(rows(q.toFloatArray(), n, r), b.v()));
    }

    /** The thin SVD of a tall {@code [p][r]} matrix, from the eigen-decomposition of its {@code r x r} Gram matrix. */
    private static TruncatedSvd thin(double[][] tall) {
        int r = tall[0].length;
        double[][] gram = new double[r][r];
        for (double[] row : tall) {
            for (int i = 0; i < r; i++) {
                for (int j = 0; j <= i; j++) {
                    gram[i][j] += row[i] * row[j];
                }
            }
        }
        SymmetricEigen eigen = SymmetricEigen.of(gram);
        double[] s = new double[r];
        double[][] v = new double[r][r];
        for (int i = 0; i < r; i++) {
            s[i] = Math.sqrt(Math.max(eigen.values()[i], 0));
            for (int j = 0; j < r; j++) {
                v[j][i] = eigen.vectors()[i][j];
            }
        }
        double[][] u = multiply(tall, v);
        for (double[] row : u) {
            for (int i = 0; i < r; i++) {
                row[i] = s[i] == 0 ? 0 : row[i] / s[i];
            }
        }
        return new TruncatedSvd(u, s, v);
    }

    /**
     * The columns of {@code x [p, r]} made orthonormal (modified Gram-Schmidt, run twice for float64 accuracy), as
     * float32 in x's manager: the {@code Q} of torch's {@code linalg.qr} up to the signs of its columns, on which
     * svd_lowrank's result does not depend.
     */
    private static NDArray orthonormal(NDArray x) {
        int p = Math.toIntExact(x.getShape().get(0));
        int r = Math.toIntExact(x.getShape().get(1));
        double[][] rowsOfX = rows(x.toFloatArray(), p, r);
        double[][] c = new double[r][p];
        for (int k = 0; k < p; k++) {
            for (int j = 0; j < r; j++) {
                c[j][k] = rowsOfX[k][j];
            }
        }
        for (int pass = 0; pass < 2; pass++) {
            for (int j = 0; j < r; j++) {
                for (int i = 0; i < j; i++) {
                    double dot = 0;
                    for (int k = 0; k < p; k++) {
                        dot += c[i][k] * c[j][k];
                    }
                    for (int k = 0; k < p; k++) {
                        c[j][k] -= dot * c[i][k];
                    }
                }
                double norm = 0;
                for (double value : c[j]) {
                    norm += value * value;
                }
                norm = Math.sqrt(norm);
                for (int k = 0; k < p; k++) {
                    c[j][k] = norm == 0 ? 0 : c[j][k] / norm;
                }
            }
        }
        float[] out = new float[p * r];
        for (int k = 0; k < p; k++) {
            for (int j = 0; j < r; j++) {
                out[k * r + j] = (float) c[j][k];
            }
        }
        return x.getManager().create(out, new Shape(p, r));
    }

    /** {@code a [p][q] b [q][t]}. */
    private static double[][] multiply(double[][] a, double[][] b) {
        int t = b[0].length;
        double[][] out = new double[a.length][t];
        for (int i = 0; i < a.length; i++) {
            for (int k = 0; k < b.length; k++) {
                double f = a[i][k];
                for (int j = 0; j < t; j++) {
                    out[i][j] += f * b[k][j];
                }
            }
        }
        return out;
    }

    /** A row-major {@code [p, width]} float32 array as {@code [p][width]} doubles. */
    private static double[][] rows(float[] flat, int p, int width) {
        double[][] out = new double[p][width];
        for (int i = 0; i < p; i++) {
            for (int j = 0; j < width; j++) {
                out[i][j] = flat[i * width + j];
            }
        }
        return out;
    }

    /** A row-major {@code [p, width]} array as {@code [p][columns]}, zero-padded to {@code columns}. */
    private static double[][] rows(double[] flat, int p, int width, int columns) {
        double[][] out = new double[p][columns];
        for (int i = 0; i < p; i++) {
            System.arraycopy(flat, i * width, out[i], 0, width);
        }
        return out;
    }
}
