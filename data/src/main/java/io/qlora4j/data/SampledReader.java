package io.qlora4j.data;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;
import java.util.function.IntFunction;

/**
 * The records of a dataset with {@code num_samples}, as LLaMA-Factory draws them: a random
 * permutation of all records, cut to {@code num_samples}, and when more are asked than there are,
 * every record once plus the rest drawn with replacement, from numpy's legacy generator as LLaMA-Factory's
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

    /**
     * Reads every record of {@code spec} and takes its {@code num_samples} in the order {@code draw} gives for the
     * record count.
     */
    static SampledReader read(DatasetSpec spec, IntFunction<int[]> draw) throws DataException {
        List<SourceRecord> records = new ArrayList<>();
        forEachRecord(spec, records::add);
        return new SampledReader(spec.files().get(0), records, draw.apply(records.size()));
    }

    /** How many records {@code spec}'s files hold, the {@code n} its {@code num_samples} are drawn from. */
    static int count(DatasetSpec spec) throws DataException {
        int[] n = new int[1];
        forEachRecord(spec, record -> n[0]++);
        return n[0];
    }

    /** Passes every record of {@code spec}'s files to {@code sink}, refusing a dataset without any. */
    private static void forEachRecord(DatasetSpec spec, Consumer<SourceRecord> sink) throws DataException {
        boolean any = false;
        for (Path file : spec.files()) {
            try (RecordReader reader = RecordReader.open(file)) {
                SourceRecord record;
                while ((record = reader.next()) != null) {
                    sink.accept(record);
                    any = true;
                }
            } catch (IOException e) {
                throw new DataException(file + ": cannot close: " + e.getMessage(), e);
            }
        }
        if (!any) {
            throw new DataException("dataset " + spec.name() + ": no records to draw num_samples from");
        }
    }

    @Override
    SourceRecord next() {
        return at < order.length ? records.get(order[at++]) : null;
    }

    @Override
    public void close() {
    }
}
