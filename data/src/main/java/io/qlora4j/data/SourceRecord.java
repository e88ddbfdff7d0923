package io.qlora4j.data;

import com.fasterxml.jackson.databind.JsonNode;

import java.nio.file.Path;

/**
 * One raw record as read from a file: the file, the JSON object (null when the line was not valid
 * JSON), the 1-based line it starts on and, for a broken line, why it could not be read.
 */
record SourceRecord(Path file, JsonNode node, long line, InvalidRecordException error) {
}
