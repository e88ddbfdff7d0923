package io.qlora4j.trainer.cvxq;

/**
 * How CVXQ calibrates and quantizes; the defaults are the reference repository's Llama settings
 * ({@code scripts/llama_all.sh}: group size 256, stride 128, 1024 principal directions, re-allocation every 16
 * sequences, validation every 64, 1024 iterations, i.e. 8 passes over 128 calibration sequences of 2048 tokens).
 *
 * @param targetBits stored bits per parameter of the block linears, side information and bias included
 * @param groupSize rows per cluster ({@code clusters = max(rows / groupSize, 1)})
 * @param stride token stride of the backward passes
 * @param pca principal directions of the final hidden state the passes take gradients along
 * @param batchSize sequences between re-allocations (regroup, dual ascent, quantize, bias update)
 * @param iterations calibration sequences processed in all (cycling over the data)
 * @param tolerance how close to {@code targetBits} the final allocation must be
 * @param biasCorrection which projections get the bias correction {@code b' = b - (W_q - W) E[x]}
 * @param validSize sequences between validations (the reference's {@code valid_size}; a multiple of
 *     {@code batchSize} validates at its re-allocations), when validation texts are given
 */
public record CvxqSettings(double targetBits, int groupSize, int stride, int pca, int batchSize, int iterations,
        double tolerance, BiasCorrection biasCorrection, int validSize) {
    /** The reference's validation sequence count (256 sequences of C4 validation text). */
    public static final int VALIDATION_SEQUENCES = 256;

    /**
     * Which projections CVXQ corrects the bias of ({@code cvxq_bias_correction}). Every family's packed CVXQ
     * checkpoint keeps a bias on any projection; a dense Hugging Face export keeps only the biases the family's
     * config.json can declare (Llama: all, through {@code attention_bias} and {@code mlp_bias}; Qwen3, Gemma and
     * Gemma 2: q/k/v/o through {@code attention_bias}; Qwen2: q/k/v, which it always has; Mistral and Phi-3: none).
     */
    public enum BiasCorrection {
        /** Every projection (the reference's behaviour): the best model; its dense export needs every bias declarable. */
        ALL,
        /** Only projections the family's config.json can give a bias: a dense export of any family equals the packed model. */
        DECLARABLE;

        /** The value of {@code cvxq_bias_correction}: {@code all} or {@code declarable}. */
        public static BiasCorrection of(String name) {
            return valueOf(name.toUpperCase(java.util.Locale.ROOT));
        }
    }

    /** The reference's calibration sequence count (128 C4 documents). */
    public static final int SEQUENCES = 128;
    /** The reference's calibration sequence length. */
    public static final int SEQUENCE_LENGTH = 2048;

    /** Checks ranges. */
    public CvxqSettings {
        if (!(targetBits >= 0 && targetBits <= 8)) {
            throw new IllegalArgumentException("target_bits must be from 0 to 8, got " + targetBits);
        }
        java.util.Objects.requireNonNull(biasCorrection, "biasCorrection");
        if (groupSize < 1 || stride < 1 || pca < 1 || batchSize < 1 || iterations < 1 || validSize < 1) {
            throw new IllegalArgumentException("CVXQ group size, stride, pca, batch size, iterations and validation"
                    + " interval must be >= 1");
        }
    }

    /** The reference's settings for {@code targetBits}, met within 0.01 bit per parameter. */
    public static CvxqSettings defaults(double targetBits) {
        return new CvxqSettings(targetBits, 256, 128, 1024, 16, 1024, 0.01, BiasCorrection.ALL, 64);
    }

    /** These settings with {@code iterations} calibration sequences processed. */
    public CvxqSettings withIterations(int n) {
        return new CvxqSettings(targetBits, groupSize, stride, pca, batchSize, n, tolerance, biasCorrection, validSize);
    }

    /** These settings with clusters of {@code rows} rows. */
    public CvxqSettings withGroupSize(int rows) {
        return new CvxqSettings(targetBits, rows, stride, pca, batchSize, iterations,
                tolerance, biasCorrection, validSize);
    }

    /** These settings correcting the biases {@code which} says. */
    public CvxqSettings withBiasCorrection(BiasCorrection which) {
        return new CvxqSettings(targetBits, groupSize, stride, pca, batchSize, iterations, tolerance, which, validSize);
    }

    /** These settings validating every {@code n} sequences. */
    public CvxqSettings withValidSize(int n) {
        return new CvxqSettings(targetBits, groupSize, stride, pca, batchSize, iterations,
                tolerance, biasCorrection, n);
    }

    /** These settings re-allocating every {@code n} sequences. */
    public CvxqSettings withBatchSize(int n) {
        return new CvxqSettings(targetBits, groupSize, stride, pca, n, iterations,
                tolerance, biasCorrection, validSize);
    }

    /**
     * The token positions one sequence of {@code length} tokens takes gradients at: the reference's
     * {@code torch.arange(0, T, stride - stride / T).int()}.
     */
    int[] positions(int length) {
        double step = stride - (double) stride / length;
        int count = (int) Math.ceil(length / step);
        int[] t = new int[count];
        for (int i = 0; i < count; i++) {
            t[i] = (int) (i * step);
        }
        return t;
    }
}
