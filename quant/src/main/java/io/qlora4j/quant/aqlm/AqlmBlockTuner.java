package io.qlora4j.quant.aqlm;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.training.GradientCollector;
import java.util.ArrayList;
import java.util.List;
import java.util.function.UnaryOperator;

/**
 * The AQLM repository's block fine-tune ({@code finetune_groupwise}): after every linear of a decoder block is
 * quantized, the codebooks and scales of all of them are trained together with Adam so that the quantized block's
 * outputs approach the original block's on the calibration inputs (mean squared error), codes fixed. Defaults are
 * the repository's: 5 epochs, learning rate 1e-5, betas (0.9, 0.95), one sequence per step.
 */
public final class AqlmBlockTuner {
    /** Reports the mean loss of each epoch. */
    @FunctionalInterface
    public interface Listener {
        /** Called after {@code epoch} (0-based) with its mean squared error. */
        void epoch(int epoch, double meanLoss);
    }

    private final int epochs;
    private final double lr;
    private final double beta1;
    private final double beta2;
    private final int batchSize;

    private AqlmBlockTuner(Builder b) {
        this.epochs = b.epochs;
        this.lr = b.lr;
        this.beta1 = b.beta1;
        this.beta2 = b.beta2;
        this.batchSize = b.batchSize;
    }

    /** A builder with the repository's defaults. */
    public static Builder builder() {
        return new Builder();
    }

    /** Epochs this tuner runs; 0 turns the fine-tune off. */
    public int epochs() {
        return epochs;
    }

    /**
     * Trains {@code layers} (made with {@link NdAqlmTensor#trainable}) so that {@code block} applied to batches of
     * {@code inputs [n, ...]} approaches {@code targets [n, ...]}. {@code block} must only record a graph (no
     * gradient collector of its own). Returns the mean loss of every epoch.
     */
    public double[] tune(List<NdAqlmTensor> layers, UnaryOperator<NDArray> block, NDArray inputs, NDArray targets,
            Listener listener) {
        List<NDArray> params = new ArrayList<>();
        layers.forEach(l -> params.addAll(l.parameters()));
        long n = inputs.getShape().get(0);
        double[] losses = new double[epochs];
        try (NDManager state = inputs.getManager().newSubManager()) {
            Adam adam = new Adam(state, params, beta1, beta2, false);
            for (int epoch = 0; epoch < epochs; epoch++) {
                double sum = 0;
                int batches = 0;
                for (long from = 0; from < n; from += batchSize) {
                    String rows = from + ":" + Math.min(n, from + batchSize);
                    try (NDScope scope = new NDScope();
                            GradientCollector collector = inputs.getManager().getEngine().newGradientCollector()) {
                        NDArray out = block.apply(inputs.get(rows));
                        NDArray loss = out.sub(targets.get(rows)).square().mean();
                        sum += loss.getFloat();
                        collector.backward(loss);
                    }
                    adam.update(lr);
                    batches++;
                }
                losses[epoch] = sum / batches;
                listener.epoch(epoch, losses[epoch]);
            }
        }
        return losses;
    }

    /** Settings of an {@link AqlmBlockTuner}. */
    public static final class Builder {
        private int epochs = 5;
        private double lr = 1e-5;
        private double beta1 = 0.9;
        private double beta2 = 0.95;
        private int batchSize = 1;

        private Builder() {}

        /** Epochs over the calibration set (default 5; 0: no fine-tune). */
        public Builder optEpochs(int value) {
            if (value < 0) {
                throw new IllegalArgumentException("fine-tune epochs must not be negative, got " + value);
            }
            this.epochs = value;
            return this;
        }

        /** Adam's learning rate (default 1e-5). */
        public Builder optLr(double value) {
            this.lr = value;
            return this;
        }

        /** Adam's betas (default 0.9, 0.95). */
        public Builder optBetas(double b1, double b2) {
            this.beta1 = b1;
            this.beta2 = b2;
            return this;
        }

        /** Sequences per step (default 1). */
        public Builder optBatchSize(int value) {
            if (value < 1) {
                throw new IllegalArgumentException("fine-tune batch size must be at least 1, got " + value);
            }
            this.batchSize = value;
            return this;
        }

        /** The tuner. */
        public AqlmBlockTuner build() {
            return new AqlmBlockTuner(this);
        }
    }
}
