package io.qlora4j.data;

import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayDeque;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Deque;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.IntStream;

/**
 * The training sequences of all datasets in file order, produced one at a time: records are read
 * (streamed) in chunks, converted and encoded on all cores and, with packing, packed group by
 * group, so memory holds at most one chunk and one group. Broken records are skipped and counted by reason; when
 * {@code log} is set, the first {@value #WARNINGS} of each dataset go to the log's detail lines with file, line and
 * reason, and each dataset's kept/skipped summary to its info lines.
 */
final class ExampleStream implements Closeable {

    static final int WARNINGS = 5;
    static final int CHUNK = 64;

    private final List<DatasetSpec> specs;
    private final List<DatasetSpec> sampledBefore;
    private final int maxRecords;
    private final ExampleEncoder encoder;
    private final DataLog log;
    private final long seed;
    private final boolean streaming;
    private final List<DatasetStats> stats = new ArrayList<>();
    private final Deque<Example> ready = new ArrayDeque<>();
    private final List<Example> group = new ArrayList<>();
    private PackingGroups groups;
    private long rows;
    private int spec = -1;
    private int file;
    private RecordReader reader;
    private RecordConverter converter;
    private final Deque<Outcome> pending = new ArrayDeque<>();
    private long read;
    private long kept;
    private long skipped;
    private final Map<String, Long> reasons = new HashMap<>();
    private final Set<String> unseen = new HashSet<>();
    /** The num_samples draws of the datasets opened so far, by their index; null until one is sampled. */
    private NumpyLegacySample numpy;
    private final Map<Integer, int[]> drawn = new HashMap<>();
    /**
     * Whether a record of the current dataset was an object: only then do the fields no record has say that the
     * columns are misnamed (an empty file, or one whose every record is broken, has no fields at all).
     */
    private boolean sawObject;

    /** A record's example, or why it was skipped. */
    private record Outcome(Example example, Path file, long line, InvalidRecordException reason) {
    }

    /**
     * A stream over {@code specs} reporting to {@code log} ({@link DataLog#SILENT} for a quiet pass); {@code seed}
     * starts the one numpy stream the datasets' {@code num_samples} subsets are drawn from in turn, after those of
     * {@code sampledBefore} (datasets the job loads first); as in LLaMA-Factory none are drawn when
     * {@code streaming}.
     */
    ExampleStream(List<DatasetSpec> specs, List<DatasetSpec> sampledBefore, int maxRecords, ExampleEncoder encoder,
            DataLog log, long seed, boolean streaming) {
        this.specs = specs;
        this.sampledBefore = sampledBefore;
        this.maxRecords = maxRecords;
        this.encoder = encoder;
        this.log = log;
        this.seed = seed;
        this.streaming = streaming;
    }

    /**
     * The next sequence, or null when all datasets are read. With packing, the examples of each group of records
     * ({@link PackingGroups}: skipped records count, as rows LLaMA-Factory drops inside its batch) are packed together.
     */
    Example next() throws DataException {
        while (ready.isEmpty()) {
            Outcome outcome = nextOutcome();
            if (outcome == null) {
                if (group.isEmpty()) {
                    return null;
                }
                flushGroup();
                continue;
            }
            if (!encoder.packing()) {
                if (outcome.example() != null) {
                    return outcome.example();
                }
                continue;
            }
            if (outcome.example() != null) {
                group.add(outcome.example());
            }
            if (groups().endsGroup(rows++)) {
                flushGroup();
            }
        }
        return ready.pollFirst();
    }

    /** The grouping of the records; with several shards it first counts the records, reading them once more. */
    private PackingGroups groups() throws DataException {
        if (groups == null) {
            // the settings give a streamed dataset one shard, as datasets maps a stream in one piece
            int shards = encoder.shards();
            groups = new PackingGroups(encoder.group(), shards, shards > 1 ? countRecords() : 0);
        }
        return groups;
    }

    /** How many records the datasets give in all (within max_samples and num_samples), kept or not. */
    private long countRecords() throws DataException {
        long all = 0;
        for (int d = 0; d < specs.size(); d++) {
            long counted = 0;
            for (int f = 0; f < readers(specs.get(d)) && !capped(counted); f++) {
                RecordReader records = open(d, f);
                try (records) {
                    while (!capped(counted) && records.next() != null) {
                        counted++;
                    }
                } catch (IOException e) {
                    throw new DataException(records.file + ": cannot close: " + e.getMessage(), e);
                }
            }
            all += counted;
        }
        return all;
    }

    /** Kept/skipped counts of the datasets finished so far. */
    List<DatasetStats> stats() {
        return List.copyOf(stats);
    }

    private void flushGroup() {
        ready.addAll(encoder.pack(group));
        group.clear();
    }

    /**
     * The next record's outcome, counted as kept or skipped (the first skipped ones logged), reading and encoding a
     * chunk when none is pending; null at the end.
     */
    private Outcome nextOutcome() throws DataException {
        Outcome outcome = pending.pollFirst();
        while (outcome == null) {
            if (!fill()) {
                return null;
            }
            outcome = pending.pollFirst();
        }
        if (outcome.example() != null) {
            kept++;
            return outcome;
        }
        skipped++;
        reasons.merge(outcome.reason().kind(), 1L, Long::sum);
        if (skipped <= WARNINGS) {
            log.detail().accept(outcome.file() + ":" + outcome.line() + ": skipped record: "
                    + outcome.reason().getMessage());
        }
        return outcome;
    }

    /**
     * Reads up to {@value #CHUNK} records of the current file (one thread: the file is read in
     * order) and converts and encodes them on all cores, keeping their order; false at the end.
     */
    private boolean fill() throws DataException {
        if (reader == null && !openNext()) {
            return false;
        }
        List<SourceRecord> records = new ArrayList<>(CHUNK);
        SourceRecord record;
        while (records.size() < CHUNK && !maxReached() && (record = reader.next()) != null) {
            records.add(record);
            read++;
            if (record.node() != null) {
                sawObject = true;
                unseen.removeIf(record.node()::has);
            }
        }
        if (records.size() < CHUNK) {
            closeReader();
            this.file++;
        }
        Outcome[] outcomes = new Outcome[records.size()];
        IntStream.range(0, outcomes.length).parallel().forEach(i -> outcomes[i] = encode(records.get(i)));
        pending.addAll(Arrays.asList(outcomes));
        return true;
    }

    private Outcome encode(SourceRecord record) {
        InvalidRecordException reason = record.error();
        if (reason == null) {
            try {
                return new Outcome(encoder.encode(converter.convert(record.node())), record.file(), record.line(),
                        null);
            } catch (InvalidRecordException e) {
                reason = e;
            }
        }
        return new Outcome(null, record.file(), record.line(), reason);
    }

    /** Opens the next file of the current dataset, or of the next dataset; false when none is left. */
    private boolean openNext() throws DataException {
        if (spec >= specs.size()) {
            return false;
        }
        while (spec < 0 || file >= readers(specs.get(spec)) || maxReached()) {
            if (spec >= 0) {
                finishDataset();
            }
            if (++spec >= specs.size()) {
                return false;
            }
            file = 0;
            read = 0;
            kept = 0;
            skipped = 0;
            reasons.clear();
            sawObject = false;
            converter = specs.get(spec).converter();
            unseen.clear();
            if (!streaming && maxRecords == 0 && !sampling(specs.get(spec))) {
                // only a whole file read before training shows that no record has a field (LLaMA-Factory takes
                // the columns of the whole file before max_samples or num_samples pick records)
                unseen.addAll(specs.get(spec).namedFields());
            }
        }
        reader = open(spec, file);
        return true;
    }

    /**
     * The reader of the {@code d}-th dataset's {@code file}-th file, or of its sample over all files
     * ({@code num_samples}). The stream opens the datasets in order, so each sampled one takes the next draw of the
     * job's numpy stream, as in LLaMA-Factory; a dataset opened again (to count its records) takes the same draw.
     */
    private RecordReader open(int d, int file) throws DataException {
        DatasetSpec dataset = specs.get(d);
        if (!sampling(dataset)) {
            return RecordReader.open(dataset.files().get(file));
        }
        if (numpy == null) {
            if (seed < 0 || seed > 0xFFFFFFFFL) {
                throw new DataException("seed: " + seed + " must be 0 to 2^32 - 1 with num_samples (dataset "
                        + dataset.name() + "), as numpy's legacy generator LLaMA-Factory samples with takes no other");
            }
            numpy = new NumpyLegacySample(seed);
            for (DatasetSpec earlier : sampledBefore) {
                if (sampling(earlier)) {
                    numpy.next(SampledReader.count(earlier), earlier.numSamples());
                }
            }
        }
        return SampledReader.read(dataset, n -> drawn.computeIfAbsent(d, i -> numpy.next(n, dataset.numSamples())));
    }

    /** A sampled dataset ({@code num_samples}) is read as one reader over all its files. */
    private int readers(DatasetSpec dataset) {
        return sampling(dataset) ? 1 : dataset.files().size();
    }

    private boolean sampling(DatasetSpec dataset) {
        return dataset.numSamples() > 0 && !streaming;
    }

    private boolean maxReached() {
        return capped(read);
    }

    /** Whether {@code records} read of one dataset reach {@code max_samples}. */
    private boolean capped(long records) {
        return maxRecords > 0 && records >= maxRecords;
    }

    private void finishDataset() throws DataException {
        String name = specs.get(spec).name();
        if (!unseen.isEmpty() && sawObject) {
            throw new DataException("dataset " + name + ": its columns name " + String.join(", ", new TreeSet<>(unseen))
                    + ", a field no record has (LLaMA-Factory stops there with a KeyError); name the field the records"
                    + " hold");
        }
        Map<String, Long> byReason = new LinkedHashMap<>();
        reasons.entrySet().stream()
                .sorted(Map.Entry.<String, Long>comparingByValue(Comparator.reverseOrder())
                        .thenComparing(Map.Entry.comparingByKey()))
                .forEach(e -> byReason.put(e.getKey(), e.getValue()));
        DatasetStats counts = new DatasetStats(name, kept, skipped, byReason);
        if (read == 0) {
            throw new DataException("dataset " + name + ": no record in " + specs.get(spec).files().stream()
                    .map(Path::toString).collect(Collectors.joining(", ")));
        }
        if (kept == 0) {
            throw new DataException("dataset " + name + ": no usable record (" + skipped + " skipped"
                    + (skipped == 0 ? ")" : ": " + counts.reasonCounts() + "; --debug shows the first " + WARNINGS
                            + " with file and line)"));
        }
        log.info().accept(counts.summary());
        stats.add(counts);
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
