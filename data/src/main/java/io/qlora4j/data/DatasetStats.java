package io.qlora4j.data;

import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.stream.Collectors;

/**
 * How many records of one dataset were kept and how many were skipped, by reason.
 *
 * @param dataset the dataset's name (dataset_info.json entry or file)
 * @param kept records that became examples
 * @param skipped records skipped
 * @param skippedByReason the skipped count of each reason, most frequent first
 */
public record DatasetStats(String dataset, long kept, long skipped, Map<String, Long> skippedByReason) {

    /** Copies the reason counts. */
    public DatasetStats {
        skippedByReason = Collections.unmodifiableMap(new LinkedHashMap<>(skippedByReason));
    }

    /** The summary line: {@code "alpaca: 998 records kept, 2 skipped (1 invalid JSON, 1 no response to train on)"}. */
    public String summary() {
        return dataset + ": " + kept + " records kept, " + skipped + " skipped"
                + (skippedByReason.isEmpty() ? "" : " (" + reasonCounts() + ")");
    }

    /** {@code "n reason, ..."}, empty when none was skipped. */
    String reasonCounts() {
        return skippedByReason.entrySet().stream().map(e -> e.getValue() + " " + e.getKey())
                .collect(Collectors.joining(", "));
    }
}
