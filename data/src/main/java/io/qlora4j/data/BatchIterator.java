package io.qlora4j.data;

import java.util.ArrayList;
import java.util.List;

/**
 * Micro-batches over the epochs, without end: each epoch visits every training example once in
 * its shuffled order; the last batch of an epoch may be smaller. {@link #position()} is the
 * position of the batch {@link #next()} returns next: save it with a checkpoint and pass it to
 * {@link DataPipeline#batches(DataPosition)} to continue with exactly that batch.
 */
public final class BatchIterator implements AutoCloseable {

    private final EpochSource source;
    private final Collator collator;
    private final int batchSize;
    private int epoch;
    private int batch;
    private EpochSource.Epoch open;
    private Example lookahead;

    BatchIterator(EpochSource source, Collator collator, int batchSize, DataPosition start) throws DataException {
        this.source = source;
        this.collator = collator;
        this.batchSize = batchSize;
        this.epoch = start.epoch();
        this.batch = start.batch();
        open = source.open(epoch, (long) batch * batchSize);
        lookahead = open.next();
        if (lookahead == null) {
            throw new DataException("data position " + epoch + "/" + batch + " is past the end of the epoch");
        }
    }

    /** The number of micro-batches in one epoch, or -1 when streaming (not known before reading). */
    public long batchesPerEpoch() {
        long size = source.size();
        return size < 0 ? -1 : (size + batchSize - 1) / batchSize;
    }

    /** The position of the next batch. */
    public DataPosition position() {
        return new DataPosition(epoch, batch);
    }

    /** The next micro-batch; after an epoch's last batch the next epoch's order begins. */
    public Batch next() throws DataException {
        List<Example> rows = new ArrayList<>(batchSize);
        while (rows.size() < batchSize && lookahead != null) {
            rows.add(lookahead);
            lookahead = open.next();
        }
        batch++;
        if (lookahead == null) {
            open.close();
            epoch++;
            batch = 0;
            open = source.open(epoch, 0);
            lookahead = open.next();
        }
        return collator.collate(rows);
    }

    /** Closes the files of a streamed epoch. */
    @Override
    public void close() throws DataException {
        open.close();
    }
}
