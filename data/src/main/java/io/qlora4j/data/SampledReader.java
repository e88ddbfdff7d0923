package io.qlora4j.data;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * The records of a dataset with {@code num_samples}, as LLaMA-Factory draws them: a random
 * permutation of all records, cut to {@code num_samples}, and when more are asked than there are,
 * every record once plus the rest drawn with replacement, with numpy's legacy generator as LLaMA-Factory's
 * global one after {@code set_seed} ({@link NumpyLegacySample}). Holds the dataset's records in memory.
 */
final class SampledReader extends RecordReader {

    private final List<SourceRecord> records;
    private final int[] order;
    private int at;

    private SampledReader(Path file, List<SourceRecord> records, int[] order) {
        super(file);
        this.records = records;
        this.order = order;
    }

    /** Reads every record of {@code spec} and draws its {@code num_samples}. */
    static SampledReader read(DatasetSpec spec, long seed) throws DataException {
        List<SourceRecord> records = new ArrayList<>();
        for (Path file : spec.files()) {
            try (RecordReader reader = RecordReader.open(file)) {
                SourceRecord record;
                while ((record = reader.next()) != null) {
                    records.add(record);
                }
            } catch (IOException e) {
                throw new DataException(file + ": cannot close: " + e.getMessage(), e);
            }
        }
        int n = records.size();
        if (n == 0) {
            throw new DataException("dataset " + spec.name() + ": no records to draw num_samples from");
        }
        if (seed < 0 || seed > 0xFFFFFFFFL) {
            throw new DataException("seed: " + seed + " must be 0 to 2^32 - 1 with num_samples (dataset " + spec.name()
                    + "), as numpy's legacy generator LLaMA-Factory samples with takes no other");
        }
        return new SampledReader(spec.files().get(0), records, NumpyLegacySample.of(seed, n, spec.numSamples()));
    }

    @Override
    SourceRecord next() {
        return at < order.length ? records.get(order[at++]) : null;
    }

    @Override
    public void close() {
    }
}
