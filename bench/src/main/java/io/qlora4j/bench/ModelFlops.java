package io.qlora4j.bench;

import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelLoader;
import java.util.Map;

/**
 * Parameter and FLOP counts of a decoder config of any family at one batch shape. A forward pass costs
 * {@code 2 * N * tokens} in the projections and lm_head ({@code N} = their parameters) plus the attention products
 * {@code QK^T} and {@code PV} at full, unmasked cost ({@code 4 * layers * seq^2 * queryDim * batch}). A QLoRA step
 * computes no gradient for the frozen weights, so its backward costs one more forward per matmul (the input
 * gradient) and two per attention product (both operands need one): {@code 4N} per token plus three times the
 * attention without recompute, {@code 6N} plus four times the attention with it. LoRA's own matmuls are left out.
 *
 * @param params all parameters
 * @param blockMatmulParams the parameters of the decoder blocks' projections
 * @param headParams lm_head's parameters
 * @param tokens batch times sequence length
 * @param attention the FLOP of one forward pass's attention products
 */
record ModelFlops(long params, long blockMatmulParams, long headParams, long tokens, double attention) {

    /** The counts of {@code config} at {@code batch} x {@code seq}. */
    static ModelFlops of(DecoderConfig config, int batch, int seq) {
        long params = 0;
        long blocks = 0;
        for (Map.Entry<String, long[]> e : ModelLoader.expectedShapes(config).entrySet()) {
            long n = RandomCheckpoint.numel(e.getValue());
            params += n;
            blocks += e.getKey().startsWith("model.layers.") && e.getValue().length == 2 ? n : 0;
        }
        long head = (long) config.hiddenSize() * config.vocabSize();
        double attention = 4.0 * config.numHiddenLayers() * seq * seq * config.queryDim() * batch;
        return new ModelFlops(params, blocks, head, (long) batch * seq, attention);
    }

    /** The parameters of every matmul with a weight: block projections and lm_head. */
    long matmulParams() {
        return blockMatmulParams + headParams;
    }

    /**
     * The count of issue 20's side-by-side table, which quotes the Python stack at 0.9 to 0.95 of the peak:
     * {@code 6 * params * tokens} over every parameter, the embedding table's included, and no attention term (134.1M
     * parameters for the ~100M shape, against its 109.5M {@link #matmulParams}).
     */
    double allParamsTraining() {
        return 6.0 * params * tokens;
    }

    /** {@link #allParamsTraining} per step of {@code stepMs} as a share of {@code peakGflops}. */
    double allParamsOfPeak(double stepMs, double peakGflops) {
        return allParamsTraining() / (stepMs * 1e6) / peakGflops;
    }

    /** FLOP of one forward pass. */
    double forward() {
        return 2.0 * matmulParams() * tokens + attention;
    }

    /** FLOP of one QLoRA training step (forward and backward, with or without recompute). */
    double training(boolean recompute) {
        return (recompute ? 6.0 : 4.0) * matmulParams() * tokens + (recompute ? 4 : 3) * attention;
    }
}
