package io.qlora4j.data;

/** How many records of one dataset were kept and how many were skipped as broken. */
public record DatasetStats(String dataset, long kept, long skipped) {
}
