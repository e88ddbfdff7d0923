package io.qlora4j.data;

import java.util.List;

/** Epochs over examples held in memory, each in the {@link BatchOrder} of (seed, epoch). */
final class MemoryEpochs implements EpochSource {

    private final List<Example> examples;
    private final int[] lengths;
    private final BatchOrder order;

    MemoryEpochs(List<Example> examples, BatchOrder order) {
        this.examples = examples;
        this.lengths = examples.stream().mapToInt(Example::length).toArray();
        this.order = order;
    }

    @Override
    public Epoch open(int epoch, long skip) {
        int[] indices = order.order(lengths, epoch);
        return new Epoch() {
            private int at = (int) Math.min(skip, indices.length);

            @Override
            public Example next() {
                return at < indices.length ? examples.get(indices[at++]) : null;
            }

            @Override
            public void close() {
            }
        };
    }

    @Override
    public long size() {
        return examples.size();
    }
}
