package io.qlora4j.quant.aqlm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import java.util.List;
import java.util.Random;

/**
 * Quantizes one linear weight to AQLM the way the AQLM repository's {@code AQEngine.quantize} does, given the
 * calibration statistic {@code X^T X} (the mean of {@code x x^T} over the layer's input tokens):
 * <ol>
 * <li>one scale per output group, the Frobenius norm of its rows (plus 1e-9); the scaled groups are clustered by
 * residual k-means, codebook after codebook ({@code init_max_iter} rounds each);</li>
 * <li>then, per epoch, {@code steps_per_epoch} steps of Adam ({@code lr}, betas (0, 0.95), AMSGrad) on the
 * codebooks and scales against {@code L = tr((W_hat - W) X^T X (W_hat - W)^T) / out}, followed by a beam search
 * over the codes;</li>
 * <li>until an epoch's first loss is not {@code relative_mse_tolerance} below the best one before it, or
 * {@code max_epochs} have run.</li>
 * </ol>
 * The codebooks and scales are rounded to float16 at the end, the form the checkpoint stores. Everything random
 * (k-means starts, the beam search's order) comes from one seed, so the result is the same for a seed (and a
 * libtorch thread count). The loss is computed in float64 as the repository does; its gradient goes to the
 * codebooks and scales through the decode's graph.
 */
public final class AqlmQuantizer {
    /** Reports progress: the relative error {@code L / L(W_hat = 0)} after each step. */
    @FunctionalInterface
    public interface Listener {
        /** Called after each Adam step of {@code epoch}. */
        void step(int epoch, int step, double relativeError);
    }

    private final AqlmScheme scheme;
    private final int beamSize;
    private final int initMaxIter;
    private final double lr;
    private final int maxEpochs;
    private final int stepsPerEpoch;
    private final double relativeMseTolerance;

    private AqlmQuantizer(Builder b) {
        this.scheme = b.scheme;
        this.beamSize = b.beamSize;
        this.initMaxIter = b.initMaxIter;
        this.lr = b.lr;
        this.maxEpochs = b.maxEpochs;
        this.stepsPerEpoch = b.stepsPerEpoch;
        this.relativeMseTolerance = b.relativeMseTolerance;
    }

    /** A builder for {@code scheme} with the repository's defaults (README's tolerance 0.01). */
    public static Builder builder(AqlmScheme scheme) {
        return new Builder(scheme);
    }

    /** The scheme. */
    public AqlmScheme scheme() {
        return scheme;
    }

    /** What {@link #quantize} returns: the tensor and its relative error on the calibration statistic. */
    public record Result(AqlmTensor tensor, double relativeError) {}

    /**
     * Quantizes {@code weight [out, in]} (row-major) against {@code xtx [in, in]} (any float dtype, on the device
     * that computes), drawing every random choice from {@code seed}.
     */
    public Result quantize(float[] weight, int out, int in, NDArray xtx, long seed, Listener listener) {
        String problem = scheme.shapeProblem(out, in);
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
        Random rnd = new Random(seed);
        int og = scheme.outGroupSize();
        int ig = scheme.inGroupSize();
        int outGroups = out / og;
        int inGroups = in / ig;
        try (NDManager m = xtx.getManager().newSubManager()) {
            NDArray w = m.create(weight, new Shape(out, in));
            NDArray xtx64 = xtx.toType(DataType.FLOAT64, false);
            NDArray xtx32 = xtx.toType(DataType.FLOAT32, false);
            NDArray w64 = w.toType(DataType.FLOAT64, false);
            double reference = w64.matMul(xtx64).mul(w64).sum().getDouble() / out;
            float[] scales = rowGroupNorms(weight, out, in, og);
            Init init = init(weight, out, in, scales, rnd, m);
            NDArray codebooks = m.create(init.codebooks, new Shape(scheme.numCodebooks(), scheme.codebookSize(),
                    scheme.groupSize()));
            NDArray scaleArray = m.create(scales);
            NDArray codes = m.create(init.codes, new Shape(outGroups, inGroups, scheme.numCodebooks()));
            codebooks.setRequiresGradient(true);
            scaleArray.setRequiresGradient(true);
            Adam adam = new Adam(m, List.of(codebooks, scaleArray), 0, 0.95, true);
            double previousBest = Double.POSITIVE_INFINITY;
            train:
            for (int epoch = 0; epoch < maxEpochs; epoch++) {
                for (int step = 0; step < stepsPerEpoch; step++) {
                    double loss = lossAndGradient(w64, xtx64, codes, codebooks, scaleArray);
                    if (!Double.isFinite(loss)) {
                        throw new IllegalStateException("quantization loss is " + loss);
                    }
                    listener.step(epoch, step, loss / reference);
                    if (step == 0 && relativeMseTolerance > 0) {
                        if (loss / previousBest > 1 - relativeMseTolerance) {
                            break train;
                        }
                        previousBest = Math.min(previousBest, loss);
                    }
                    adam.update(lr);
                }
                try (NDScope scope = new NDScope()) {
                    NDArray next = BeamSearch.search(scheme, w, xtx32, codebooks.stopGradient(),
                            scaleArray.stopGradient(), codes, beamSize, rnd).toType(DataType.INT32, false);
                    NDScope.unregister(next);
                    codes.close();
                    codes = next;
                    codes.attach(m);
                }
            }
            float[] cb16 = NdAqlmTensor.float16(codebooks);
            float[] s16 = NdAqlmTensor.float16(scaleArray);
            int[] finalCodes = codes.toIntArray();
            AqlmTensor t = new AqlmTensor(scheme, out, in, finalCodes, cb16, s16);
            return new Result(t, error(t, w64, xtx64, m) / reference);
        }
    }

    /**
     * The float64 loss {@code tr(D X^T X D^T) / out} with {@code D = W_hat - W}, leaving its gradient in the
     * codebooks and scales: the graph is only the decode, driven backwards by {@code dL/dW_hat = 2 D X^T X / out}.
     */
    private double lossAndGradient(NDArray w64, NDArray xtx64, NDArray codes, NDArray codebooks, NDArray scales) {
        long out = w64.getShape().get(0);
        try (NDScope scope = new NDScope();
                GradientCollector collector = w64.getManager().getEngine().newGradientCollector()) {
            NDArray estimate = NdAqlmTensor.decode(scheme, out, w64.getShape().get(1), codes, codebooks, scales);
            NDArray delta = estimate.stopGradient().toType(DataType.FLOAT64, false).sub(w64);
            NDArray product = delta.matMul(xtx64);
            double loss = product.mul(delta).sum().getDouble() / out;
            NDArray upstream = product.mul(2.0 / out).toType(DataType.FLOAT32, false);
            collector.backward(estimate.mul(upstream).sum());
            return loss;
        }
    }

    /** The loss of a finished tensor, in float64. */
    private static double error(AqlmTensor t, NDArray w64, NDArray xtx64, NDManager m) {
        try (NDManager e = m.newSubManager()) {
            NDArray delta = e.create(t.decode(), new Shape(t.outFeatures(), t.inFeatures()))
                    .toType(DataType.FLOAT64, false).sub(w64);
            return delta.matMul(xtx64).mul(delta).sum().getDouble() / t.outFeatures();
        }
    }

    /** {@code ||W[o*og : (o+1)*og, :]||_F + 1e-9} for every output group. */
    private static float[] rowGroupNorms(float[] w, int out, int in, int og) {
        float[] s = new float[out / og];
        for (int o = 0; o < s.length; o++) {
            double sum = 0;
            for (int i = o * og * in; i < (o + 1) * og * in; i++) {
                sum += (double) w[i] * w[i];
            }
            s[o] = (float) (Math.sqrt(sum) + 1e-9);
        }
        return s;
    }

    private record Init(float[] codebooks, int[] codes) {}

    /** Residual k-means over the scaled groups {@code [out/og * in/ig, og*ig]}. */
    private Init init(float[] w, int out, int in, float[] scales, Random rnd, NDManager m) {
        int og = scheme.outGroupSize();
        int ig = scheme.inGroupSize();
        int gs = scheme.groupSize();
        int inGroups = in / ig;
        int points = out / og * inGroups;
        float[] residual = new float[points * gs];
        for (int row = 0; row < out; row++) {
            int o = row / og;
            int a = row % og;
            for (int col = 0; col < in; col++) {
                int p = o * inGroups + col / ig;
                residual[p * gs + a * ig + col % ig] = w[row * in + col] / scales[o];
            }
        }
        int k = scheme.numCodebooks();
        int size = scheme.codebookSize();
        float[] codebooks = new float[k * size * gs];
        int[] codes = new int[points * k];
        for (int c = 0; c < k; c++) {
            KMeans.Fit fit = KMeans.fit(residual, gs, size, initMaxIter, rnd, m);
            System.arraycopy(fit.centroids(), 0, codebooks, c * size * gs, size * gs);
            for (int p = 0; p < points; p++) {
                int entry = fit.nearest()[p];
                codes[p * k + c] = entry;
                for (int e = 0; e < gs; e++) {
                    residual[p * gs + e] -= fit.centroids()[entry * gs + e];
                }
            }
        }
        return new Init(codebooks, codes);
    }

    /** Settings of an {@link AqlmQuantizer}; defaults are the AQLM repository's ({@code main.py}). */
    public static final class Builder {
        private final AqlmScheme scheme;
        private int beamSize = 1;
        private int initMaxIter = 100;
        private double lr = 1e-4;
        private int maxEpochs = 1000;
        private int stepsPerEpoch = 100;
        private double relativeMseTolerance = 0.01;

        private Builder(AqlmScheme scheme) {
            this.scheme = scheme;
        }

        /** Hypotheses the beam search keeps per output group (default 1). */
        public Builder optBeamSize(int value) {
            this.beamSize = positive(value, "beam size");
            return this;
        }

        /** k-means rounds per codebook at initialization (default 100). */
        public Builder optInitMaxIter(int value) {
            this.initMaxIter = positive(value, "init_max_iter");
            return this;
        }

        /** Adam's learning rate on the codebooks and scales (default 1e-4). */
        public Builder optLr(double value) {
            this.lr = value;
            return this;
        }

        /** Epochs of Adam steps and beam search at most (default 1000). */
        public Builder optMaxEpochs(int value) {
            this.maxEpochs = positive(value, "max_epochs");
            return this;
        }

        /** Adam steps per epoch (default 100). */
        public Builder optStepsPerEpoch(int value) {
            this.stepsPerEpoch = positive(value, "steps_per_epoch");
            return this;
        }

        /**
         * Stop once an epoch improves the loss by less than this fraction (default 0.01, the value the repository's
         * README runs with; 0 runs all epochs, the repository's argparse default).
         */
        public Builder optRelativeMseTolerance(double value) {
            this.relativeMseTolerance = value;
            return this;
        }

        private static int positive(int v, String what) {
            if (v < 1) {
                throw new IllegalArgumentException(what + " must be at least 1, got " + v);
            }
            return v;
        }

        /** The quantizer. */
        public AqlmQuantizer build() {
            return new AqlmQuantizer(this);
        }
    }
}
