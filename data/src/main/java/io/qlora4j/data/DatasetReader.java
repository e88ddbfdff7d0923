package io.qlora4j.data;

import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

import java.io.IOException;
import java.nio.file.Path;

/**
 * Reads one dataset record by record (streaming), converts each to a {@link Conversation} and
 * hands it on; a record that breaks its format is skipped with a warning naming file and line
 * (the first {@value #WARNINGS} per dataset; the rest are only counted).
 */
final class DatasetReader {

    /** Receives the conversations of a dataset and says whether it could use each one. */
    interface Sink {
        /** Takes one conversation; throws {@link InvalidRecordException} to skip it as broken. */
        void accept(Conversation conversation) throws InvalidRecordException;
    }

    private static final Logger LOG = LoggerFactory.getLogger(DatasetReader.class);
    static final int WARNINGS = 10;

    private DatasetReader() {
    }

    /** Reads {@code spec}, at most {@code maxRecords} raw records (0 = all), into {@code sink}. */
    static DatasetStats read(DatasetSpec spec, int maxRecords, Sink sink) throws DataException {
        RecordConverter converter = spec.converter();
        long kept = 0;
        long skipped = 0;
        long seen = 0;
        for (Path file : spec.files()) {
            try (RecordReader reader = RecordReader.open(file)) {
                SourceRecord record;
                while ((maxRecords == 0 || seen < maxRecords) && (record = reader.next()) != null) {
                    seen++;
                    String reason = record.error();
                    if (reason == null) {
                        try {
                            sink.accept(converter.convert(record.node()));
                            kept++;
                            continue;
                        } catch (InvalidRecordException e) {
                            reason = e.getMessage();
                        }
                    }
                    skipped++;
                    if (skipped <= WARNINGS) {
                        LOG.warn("{}:{}: skipped record: {}", file, record.line(), reason);
                    }
                }
            } catch (IOException e) {
                throw new DataException(file + ": cannot close: " + e.getMessage(), e);
            }
        }
        if (kept == 0) {
            throw new DataException("dataset " + spec.name() + ": no usable record (" + skipped + " skipped)");
        }
        LOG.info("dataset {}: kept {} records, skipped {}", spec.name(), kept, skipped);
        return new DatasetStats(spec.name(), kept, skipped);
    }
}
