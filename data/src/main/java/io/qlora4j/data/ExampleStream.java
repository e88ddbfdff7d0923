package io.qlora4j.data;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.Closeable;
import java.io.IOException;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Deque;
import java.util.List;

/**
 * The training sequences of all datasets in file order, produced one at a time: records are read
 * (streamed), converted, encoded and, with packing, packed group by group, so memory holds at
 * most one group. Broken records are skipped and counted; the first {@value #WARNINGS} of each
 * dataset are logged with file and line when {@code log} is set, then a kept/skipped summary.
 */
final class ExampleStream implements Closeable {

    private static final Logger LOG = LoggerFactory.getLogger(ExampleStream.class);
    static final int WARNINGS = 10;

    private final List<DatasetSpec> specs;
    private final int maxRecords;
    private final ExampleEncoder encoder;
    private final boolean log;
    private final List<DatasetStats> stats = new ArrayList<>();
    private final Deque<Example> ready = new ArrayDeque<>();
    private final List<Example> group = new ArrayList<>();
    private int spec = -1;
    private int file;
    private RecordReader reader;
    private RecordConverter converter;
    private long kept;
    private long skipped;

    ExampleStream(List<DatasetSpec> specs, int maxRecords, ExampleEncoder encoder, boolean log) {
        this.specs = specs;
        this.maxRecords = maxRecords;
        this.encoder = encoder;
        this.log = log;
    }

    /** The next sequence, or null when all datasets are read. */
    Example next() throws DataException {
        while (ready.isEmpty()) {
            Example example = nextEncoded();
            if (example == null) {
                if (group.isEmpty()) {
                    return null;
                }
                flushGroup();
            } else if (encoder.packing()) {
                group.add(example);
                if (group.size() == ExampleEncoder.GROUP) {
                    flushGroup();
                }
            } else {
                return example;
            }
        }
        return ready.pollFirst();
    }

    /** Kept/skipped counts of the datasets finished so far. */
    List<DatasetStats> stats() {
        return List.copyOf(stats);
    }

    private void flushGroup() {
        ready.addAll(encoder.pack(group));
        group.clear();
    }

    /** The next usable record's example, opening files and datasets as needed; null at the end. */
    private Example nextEncoded() throws DataException {
        while (true) {
            if (reader == null && !openNext()) {
                return null;
            }
            SourceRecord record = (maxRecords > 0 && kept + skipped >= maxRecords) ? null : reader.next();
            if (record == null) {
                closeReader();
                file++;
                continue;
            }
            String reason = record.error();
            if (reason == null) {
                try {
                    Example example = encoder.encode(converter.convert(record.node()));
                    kept++;
                    return example;
                } catch (InvalidRecordException e) {
                    reason = e.getMessage();
                }
            }
            skipped++;
            if (log && skipped <= WARNINGS) {
                LOG.warn("{}:{}: skipped record: {}", reader.file, record.line(), reason);
            }
        }
    }

    /** Opens the next file of the current dataset, or of the next dataset; false when none is left. */
    private boolean openNext() throws DataException {
        if (spec >= specs.size()) {
            return false;
        }
        while (spec < 0 || file >= specs.get(spec).files().size() || maxReached()) {
            if (spec >= 0) {
                finishDataset();
            }
            if (++spec >= specs.size()) {
                return false;
            }
            file = 0;
            kept = 0;
            skipped = 0;
            converter = specs.get(spec).converter();
        }
        reader = RecordReader.open(specs.get(spec).files().get(file));
        return true;
    }

    private boolean maxReached() {
        return maxRecords > 0 && kept + skipped >= maxRecords;
    }

    private void finishDataset() throws DataException {
        DatasetSpec done = specs.get(spec);
        if (kept == 0) {
            throw new DataException("dataset " + done.name() + ": no usable record (" + skipped + " skipped)");
        }
        if (log) {
            LOG.info("dataset {}: kept {} records, skipped {}", done.name(), kept, skipped);
        }
        stats.add(new DatasetStats(done.name(), kept, skipped));
    }

    private void closeReader() throws DataException {
        try {
            reader.close();
        } catch (IOException e) {
            throw new DataException(reader.file + ": cannot close: " + e.getMessage(), e);
        } finally {
            reader = null;
        }
    }

    @Override
    public void close() throws IOException {
        if (reader != null) {
            reader.close();
            reader = null;
        }
    }
}
