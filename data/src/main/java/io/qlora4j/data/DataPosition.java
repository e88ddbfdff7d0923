package io.qlora4j.data;

/**
 * Where a run stands in its data: the epoch (from 0) and the index of the next micro-batch within
 * that epoch. Saved in a checkpoint, it makes a resumed run continue with the exact next batch.
 */
public record DataPosition(int epoch, int batch) {

    /** The start of training. */
    public static final DataPosition START = new DataPosition(0, 0);

    /** Checks that both parts are non-negative. */
    public DataPosition {
        if (epoch < 0 || batch < 0) {
            throw new IllegalArgumentException("negative data position " + epoch + "/" + batch);
        }
    }
}
