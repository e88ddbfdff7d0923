package io.qlora4j.data;

/**
 * One micro-batch, row-major flat arrays of shape {@code [rows, columns]} (ready for
 * {@code manager.create(array, new Shape(rows, columns))}), right-padded to the longest row.
 * {@code attentionMask} is 0 on padding and otherwise the 1-based index of the example a token
 * belongs to within its row (always 1 without packing): token i may attend to token j of the same
 * row iff j <= i and both carry the same non-zero value. {@code positionIds} restart at 0 for each
 * example; {@code labels} are -100 on padding and wherever no loss is taken.
 */
public record Batch(int rows, int columns, long[] inputIds, long[] attentionMask, long[] positionIds, long[] labels) {

    /** The number of non-padding tokens. */
    public long tokens() {
        long n = 0;
        for (long m : attentionMask) {
            n += m != 0 ? 1 : 0;
        }
        return n;
    }

    /** The number of tokens that carry a label (the loss denominator of this batch). */
    public long labelledTokens() {
        long n = 0;
        for (long label : labels) {
            n += label != Example.IGNORE_INDEX ? 1 : 0;
        }
        return n;
    }
}
