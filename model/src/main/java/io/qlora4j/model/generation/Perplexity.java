package io.qlora4j.model.generation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.decoder.CausalLM;

/**
 * Token-weighted cross-entropy of a model on text, as {@code qlora4j eval} reports it: every position
 * from the second predicts its token, and the loss is the summed negative log-likelihood over all
 * predicted tokens divided by their count.
 *
 * @param tokens predicted tokens counted so far
 * @param nll their summed negative log-likelihood (nats)
 */
public record Perplexity(long tokens, double nll) {

    /** No tokens yet. */
    public static final Perplexity NONE = new Perplexity(0, 0);

    /** Mean negative log-likelihood per predicted token (NaN before any token). */
    public double loss() {
        return tokens == 0 ? Double.NaN : nll / tokens;
    }

    /** {@code exp(loss)}. */
    public double perplexity() {
        return Math.exp(loss());
    }

    /** This total plus another. */
    public Perplexity plus(Perplexity other) {
        return new Perplexity(tokens + other.tokens, nll + other.nll);
    }

    /** The summed negative log-likelihood of {@code ids[1..]} given their prefixes, in one forward pass. */
    public static Perplexity of(CausalLM model, long[] ids) {
        if (ids.length < 2) {
            return NONE;
        }
        try (NDManager scope = model.manager().newSubManager()) {
            int n = ids.length;
            NDArray input = scope.create(ids, new Shape(1, n));
            NDArray logits = model.forward(input, null).get("0, :-1, :");
            NDArray targets = scope.create(java.util.Arrays.copyOfRange(ids, 1, n), new Shape(n - 1, 1));
            double logLikelihood = logits.logSoftmax(-1).gather(targets, 1).sum().getFloat();
            return new Perplexity(n - 1, -logLikelihood);
        }
    }
}
