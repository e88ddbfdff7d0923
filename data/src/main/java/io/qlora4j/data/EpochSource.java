package io.qlora4j.data;

/**
 * The examples of one epoch in training order, for {@link BatchIterator}: from memory in a
 * {@link BatchOrder}, or streamed from the files through a shuffle buffer.
 */
interface EpochSource {

    /** Reads the examples of one epoch in order. */
    interface Epoch extends AutoCloseable {
        /** The next example, null at the end of the epoch. */
        Example next() throws DataException;

        @Override
        void close() throws DataException;
    }

    /** Opens {@code epoch}, positioned after its first {@code skip} examples. */
    Epoch open(int epoch, long skip) throws DataException;

    /** The number of examples per epoch, -1 when unknown before reading (streaming). */
    long size();
}
