package io.qlora4j.model.llama;

import java.util.List;
import java.util.Map;
import io.qlora4j.model.decoder.DecoderConfig;

/**
 * Test fixture (shared through the test jar): the token-weighted mean cross-entropy of sequences under the
 * independent float64 {@link ReferenceLlama}, the figure {@code qlora4j eval} reports.
 */
public final class ReferenceEval {
    private ReferenceEval() {}

    /** Mean over every predicted token (positions 1..) of {@code -log p(token)}, in float64. */
    public static double loss(DecoderConfig config, Map<String, float[]> weights, List<int[]> sequences) {
        double sum = 0;
        long tokens = 0;
        for (int[] ids : sequences) {
            sum += ReferenceLlama.meanCrossEntropy(logits(config, weights, ids), ids) * (ids.length - 1);
            tokens += ids.length - 1;
        }
        return sum / tokens;
    }

    /** Logits {@code [s][vocab]} of one sequence at positions 0..s-1. */
    public static double[][] logits(DecoderConfig config, Map<String, float[]> weights, int[] ids) {
        int[] positions = new int[ids.length];
        boolean[] real = new boolean[ids.length];
        for (int i = 0; i < ids.length; i++) {
            positions[i] = i;
            real[i] = true;
        }
        return new ReferenceLlama(config, weights).forward(ids, positions, real);
    }
}
