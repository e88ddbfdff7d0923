package io.qlora4j.model.generation;

/**
 * transformers' {@code RepetitionPenaltyLogitsProcessor}: the logit of every id the sequence already holds (prompt
 * and generated ids) is divided by the penalty when positive and multiplied by it when negative, in float32, before
 * any other choice, greedy included; 1 leaves the logits as they are.
 *
 * @param penalty above 0
 */
public record RepetitionPenalty(double penalty) {
    /** No penalty. */
    public static final RepetitionPenalty NONE = new RepetitionPenalty(1.0);

    /** Checks the penalty. */
    public RepetitionPenalty {
        if (!(penalty > 0)) {
            throw new IllegalArgumentException("repetition_penalty must be > 0, got " + penalty);
        }
    }

    /**
     * {@code logits[from, from + seen.length)} penalized where {@code seen[id]} (the sequence holds {@code id}), as a
     * new array; the logits themselves when the penalty is 1.
     */
    public float[] apply(float[] logits, int from, boolean[] seen) {
        float p = (float) penalty;
        if (p == 1f && from == 0 && seen.length == logits.length) {
            return logits;
        }
        float[] out = new float[seen.length];
        System.arraycopy(logits, from, out, 0, seen.length);
        if (p != 1f) {
            for (int i = 0; i < out.length; i++) {
                if (seen[i]) {
                    out[i] = out[i] < 0 ? out[i] * p : out[i] / p;
                }
            }
        }
        return out;
    }
}
