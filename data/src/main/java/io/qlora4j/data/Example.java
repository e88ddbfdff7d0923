package io.qlora4j.data;

/**
 * One training sequence: token ids, labels (-100 where no loss is taken) and the lengths of the
 * examples packed into it, in order ({@code {inputIds.length}} when it holds a single example).
 */
public record Example(int[] inputIds, int[] labels, int[] segmentLengths) {

    /** The ignored label, as torch's cross-entropy {@code ignore_index} and LLaMA-Factory's IGNORE_INDEX. */
    public static final int IGNORE_INDEX = -100;

    /** A sequence holding one example. */
    public Example(int[] inputIds, int[] labels) {
        this(inputIds, labels, new int[] {inputIds.length});
    }

    /** Checks that ids, labels and segment lengths agree. */
    public Example {
        if (inputIds.length != labels.length) {
            throw new IllegalArgumentException(inputIds.length + " ids but " + labels.length + " labels");
        }
        int total = 0;
        for (int length : segmentLengths) {
            total += length;
        }
        if (total != inputIds.length) {
            throw new IllegalArgumentException("segments cover " + total + " of " + inputIds.length + " tokens");
        }
    }

    /** The number of tokens. */
    public int length() {
        return inputIds.length;
    }
}
