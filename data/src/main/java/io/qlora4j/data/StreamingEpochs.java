package io.qlora4j.data;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;

/**
 * Epochs read from the files each time (heap bounded by the shuffle buffer), shuffled as
 * Hugging Face datasets' {@code IterableDataset.shuffle(buffer_size)}: a buffer of
 * {@code bufferSize} examples; once full, each new example takes the place of a random one
 * ({@code random.nextInt(bufferSize)}), which is emitted; at the end the buffer is shuffled
 * (Fisher-Yates, {@link BatchOrder#shuffle}) and emitted. {@code random = new Random(seed + epoch)}.
 * The first {@code head} examples of the stream are left out (they are the held-out split).
 * Skipped records are logged while reading the first epoch.
 */
final class StreamingEpochs implements EpochSource {

    /** Opens a fresh stream over the datasets, logging skipped records when {@code log}. */
    interface Streams {
        ExampleStream open(boolean log);
    }

    private final Streams streams;
    private final long seed;
    private final int bufferSize;
    private final long head;

    StreamingEpochs(Streams streams, long seed, int bufferSize, long head) {
        this.streams = streams;
        this.seed = seed;
        this.bufferSize = bufferSize;
        this.head = head;
    }

    @Override
    public Epoch open(int epoch, long skip) throws DataException {
        ExampleStream stream = streams.open(epoch == 0);
        for (long i = 0; i < head && stream.next() != null; i++) {
            // the held-out examples
        }
        Epoch shuffled = new Shuffled(stream, new Random(seed + epoch));
        for (long i = 0; i < skip && shuffled.next() != null; i++) {
            // resume: the batches already trained on
        }
        return shuffled;
    }

    @Override
    public long size() {
        return -1;
    }

    private final class Shuffled implements Epoch {
        private final ExampleStream stream;
        private final Random random;
        private final List<Example> buffer = new ArrayList<>();
        private boolean drained;
        private int[] drainOrder;
        private int drainAt;

        Shuffled(ExampleStream stream, Random random) {
            this.stream = stream;
            this.random = random;
        }

        @Override
        public Example next() throws DataException {
            while (!drained) {
                Example incoming = stream.next();
                if (incoming == null) {
                    drained = true;
                    drainOrder = new int[buffer.size()];
                    for (int i = 0; i < drainOrder.length; i++) {
                        drainOrder[i] = i;
                    }
                    BatchOrder.shuffle(drainOrder, random);
                } else if (buffer.size() < bufferSize) {
                    buffer.add(incoming);
                } else {
                    int i = random.nextInt(bufferSize);
                    Example out = buffer.get(i);
                    buffer.set(i, incoming);
                    return out;
                }
            }
            return drainAt < drainOrder.length ? buffer.get(drainOrder[drainAt++]) : null;
        }

        @Override
        public void close() throws DataException {
            try {
                stream.close();
            } catch (IOException e) {
                throw new DataException("cannot close the dataset files: " + e.getMessage(), e);
            }
        }
    }
}
