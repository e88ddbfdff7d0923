package io.qlora4j.data;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * Micro-batches over the epochs, without end: each epoch visits every example once in its
 * {@link BatchOrder}, the last batch of an epoch may be smaller. {@link #position()} is the
 * position of the batch {@link #next()} returns next; start a new iterator there to resume.
 */
public final class BatchIterator implements Iterator<Batch> {

    private final List<Example> examples;
    private final int[] lengths;
    private final BatchOrder order;
    private final Collator collator;
    private final int batchSize;
    private int epoch;
    private int batch;
    private int[] epochOrder;

    BatchIterator(List<Example> examples, BatchOrder order, Collator collator, int batchSize, DataPosition start) {
        if (examples.isEmpty()) {
            throw new IllegalStateException("no training examples");
        }
        this.examples = examples;
        this.lengths = examples.stream().mapToInt(Example::length).toArray();
        this.order = order;
        this.collator = collator;
        this.batchSize = batchSize;
        this.epoch = start.epoch();
        this.batch = start.batch();
        if (batch >= batchesPerEpoch()) {
            throw new IllegalArgumentException("batch " + batch + " is past the " + batchesPerEpoch()
                    + " batches of an epoch");
        }
        this.epochOrder = order.order(lengths, epoch);
    }

    /** The number of micro-batches in one epoch. */
    public int batchesPerEpoch() {
        return (examples.size() + batchSize - 1) / batchSize;
    }

    /** The position of the next batch. */
    public DataPosition position() {
        return new DataPosition(epoch, batch);
    }

    /** Always true: the iterator runs over as many epochs as the trainer asks. */
    @Override
    public boolean hasNext() {
        return true;
    }

    /** The next micro-batch; crossing an epoch end starts the next epoch's order. */
    @Override
    public Batch next() {
        int from = batch * batchSize;
        int to = Math.min(from + batchSize, examples.size());
        List<Example> rows = new ArrayList<>(to - from);
        for (int i = from; i < to; i++) {
            rows.add(examples.get(epochOrder[i]));
        }
        batch++;
        if (batch == batchesPerEpoch()) {
            epoch++;
            batch = 0;
            epochOrder = order.order(lengths, epoch);
        }
        return collator.collate(rows);
    }
}
