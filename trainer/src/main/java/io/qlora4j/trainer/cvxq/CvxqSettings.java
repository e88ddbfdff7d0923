package io.qlora4j.trainer.cvxq;

/**
 * How CVXQ calibrates and quantizes; the defaults are the reference repository's Llama settings
 * ({@code scripts/llama_all.sh}: group size 256, stride 128, 1024 principal directions, re-allocation every 16
 * sequences, 1024 iterations, i.e. 8 passes over 128 calibration sequences of 2048 tokens).
 *
 * @param targetBits stored bits per parameter of the block linears, side information and bias included
 * @param groupSize rows per cluster ({@code clusters = max(rows / groupSize, 1)})
 * @param stride token stride of the backward passes
 * @param pca principal directions of the final hidden state the passes take gradients along
 * @param batchSize sequences between re-allocations (regroup, dual ascent, quantize, bias update)
 * @param iterations calibration sequences processed in all (cycling over the data)
 * @param tolerance how close to {@code targetBits} the final allocation must be
 */
public record CvxqSettings(double targetBits, int groupSize, int stride, int pca, int batchSize, int iterations,
        double tolerance) {
    /** The reference's calibration sequence count (128 C4 documents). */
    public static final int SEQUENCES = 128;
    /** The reference's calibration sequence length. */
    public static final int SEQUENCE_LENGTH = 2048;

    /** Checks ranges. */
    public CvxqSettings {
        if (!(targetBits >= 0 && targetBits <= 8)) {
            throw new IllegalArgumentException("target_bits must be from 0 to 8, got " + targetBits);
        }
        if (groupSize < 1 || stride < 1 || pca < 1 || batchSize < 1 || iterations < 1) {
            throw new IllegalArgumentException("CVXQ group size, stride, pca, batch size and iterations must be >= 1");
        }
    }

    /** The reference's settings for {@code targetBits}, met within 0.01 bit per parameter. */
    public static CvxqSettings defaults(double targetBits) {
        return new CvxqSettings(targetBits, 256, 128, 1024, 16, 1024, 0.01);
    }

    /** These settings with {@code iterations} calibration sequences processed. */
    public CvxqSettings withIterations(int n) {
        return new CvxqSettings(targetBits, groupSize, stride, pca, batchSize, n, tolerance);
    }

    /** These settings with clusters of {@code rows} rows. */
    public CvxqSettings withGroupSize(int rows) {
        return new CvxqSettings(targetBits, rows, stride, pca, batchSize, iterations, tolerance);
    }

    /** These settings re-allocating every {@code n} sequences. */
    public CvxqSettings withBatchSize(int n) {
        return new CvxqSettings(targetBits, groupSize, stride, pca, n, iterations, tolerance);
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
