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
     * The ids a sequence starts with, {@code ids[from, from + length)}, as the {@code seen} mask {@link #apply} reads
     * over a vocabulary of {@code vocab}; a caller marks each id it then chooses.
     */
    public static boolean[] seen(int vocab, long[] ids, int from, int length) {
        boolean[] seen = new boolean[vocab];
        for (int i = from; i < from + length; i++) {
            seen[(int) ids[i]] = true;
        }
        return seen;
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
