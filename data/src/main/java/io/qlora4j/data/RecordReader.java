package io.qlora4j.data;

import com.fasterxml.jackson.core.JsonFactory;
import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
import com.fasterxml.jackson.core.StreamReadConstraints;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.io.BufferedReader;
import java.io.Closeable;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * Streams the records of one data file, one at a time, never the whole file: a JSON array of
 * objects (Jackson's streaming parser, one element materialized at a time) or JSON Lines (one
 * object per line; a broken line is returned as a record with an error so the caller can skip
 * and count it), or CSV with a header row (RFC 4180 quoting; an empty cell reads as null, as
 * pandas' NaN), or plain text, each line one record {@code {"text": line}} as Hugging Face datasets'
 * {@code text} builder reads it (every line, empty ones included, without its line break; {@code \n},
 * {@code \r\n} and {@code \r} all end a line). The format follows the extension: {@code .jsonl} lines,
 * {@code .json} array or lines, {@code .csv}, {@code .txt}.
 */
abstract class RecordReader implements Closeable {

    /**
     * Reads records with no cap on a string's length: Jackson's default cap (20 million characters) refused a valid
     * record's long text as invalid JSON, where LLaMA-Factory reads it and cuts it at cutoff_len.
     */
    static final ObjectMapper JSON = new ObjectMapper(JsonFactory.builder()
            .streamReadConstraints(StreamReadConstraints.builder().maxStringLength(Integer.MAX_VALUE).build())
            .build());
    private static final InvalidRecordException NOT_AN_OBJECT = new InvalidRecordException("not a JSON object");

    final Path file;

    RecordReader(Path file) {
        this.file = file;
    }

    /** The next record, or null at the end of the file. */
    abstract SourceRecord next() throws DataException;

    /** Opens a reader for {@code file}, choosing the format from its extension and first character. */
    static RecordReader open(Path file) throws DataException {
        String name = file.getFileName().toString().toLowerCase();
        try {
            if (name.endsWith(".jsonl")) {
                return new Lines(file, true, RecordReader::jsonLine);
            }
            if (name.endsWith(".json")) {
                return firstNonBlank(file) == '[' ? new Array(file) : new Lines(file, true, RecordReader::jsonLine);
            }
            if (name.endsWith(".csv")) {
                return new Csv(file);
            }
            if (name.endsWith(".txt")) {
                return new Lines(file, false, RecordReader::textLine);
            }
        } catch (StrictUtf8Reader.Malformed e) {
            throw notUtf8(file, e);
        } catch (IOException e) {
            throw new DataException(file + ": cannot read: " + e.getMessage(), e);
        }
        throw new DataException(file + ": unsupported file type; expected .json, .jsonl, .csv or .txt");
    }

    /** A strictly decoded UTF-8 file, whose bad bytes are reported with their line. */
    static BufferedReader utf8(Path file) throws IOException {
        return new BufferedReader(new StrictUtf8Reader(Files.newInputStream(file)));
    }

    static DataException notUtf8(Path file, StrictUtf8Reader.Malformed e) {
        return new DataException(file + ":" + e.line() + ": not valid UTF-8", e);
    }

    private static int firstNonBlank(Path file) throws IOException {
        try (BufferedReader reader = utf8(file)) {
            int c;
            do {
                c = reader.read();
            } while (c == ' ' || c == '\n' || c == '\r' || c == '\t');
            return c;
        }
    }

    /** How one line of a line-based file becomes a record. */
    @FunctionalInterface
    private interface LineParser {
        /** The record of {@code text} (one line without its break) at 1-based {@code line} of {@code file}. */
        SourceRecord parse(Path file, String text, long line);
    }

    /** JSON Lines: each line one object (a broken line is a record with its error). */
    private static SourceRecord jsonLine(Path file, String text, long line) {
        try {
            JsonNode node = JSON.readTree(text);
            return node.isObject() ? new SourceRecord(file, node, line, null)
                    : new SourceRecord(file, null, line, NOT_AN_OBJECT);
        } catch (JsonProcessingException e) {
            return new SourceRecord(file, null, line,
                    new InvalidRecordException("invalid JSON", "invalid JSON: " + e.getOriginalMessage()));
        }
    }

    /** Plain text: each line one record with the line in {@code text}. */
    private static SourceRecord textLine(Path file, String text, long line) {
        return new SourceRecord(file, JSON.createObjectNode().put("text", text), line, null);
    }

    /** A file read line by line: JSON Lines (blank lines passed over) or plain text (every line a record). */
    private static final class Lines extends RecordReader {
        private final BufferedReader reader;
        private final boolean skipBlank;
        private final LineParser parser;
        private long line;

        Lines(Path file, boolean skipBlank, LineParser parser) throws IOException {
            super(file);
            this.reader = utf8(file);
            this.skipBlank = skipBlank;
            this.parser = parser;
        }

        @Override
        SourceRecord next() throws DataException {
            try {
                String text;
                do {
                    text = reader.readLine();
                    if (text == null) {
                        return null;
                    }
                    line++;
                } while (skipBlank && text.isBlank());
                return parser.parse(file, text, line);
            } catch (StrictUtf8Reader.Malformed e) {
                throw notUtf8(file, e);
            } catch (IOException e) {
                throw new DataException(file + ":" + (line + 1) + ": cannot read: " + e.getMessage(), e);
            }
        }

        @Override
        public void close() throws IOException {
            reader.close();
        }
    }

    /** A JSON array of objects, read element by element. */
    private static final class Array extends RecordReader {
        private final JsonParser parser;

        Array(Path file) throws IOException {
            super(file);
            parser = JSON.createParser(file.toFile());
            parser.nextToken();
        }

        @Override
        SourceRecord next() throws DataException {
            long line = parser.currentLocation().getLineNr();
            try {
                JsonToken token = parser.nextToken();
                line = parser.currentTokenLocation().getLineNr();
                if (token == JsonToken.END_ARRAY || token == null) {
                    if (token == JsonToken.END_ARRAY && parser.nextToken() != null) {
                        throw new DataException(file + ":" + parser.currentTokenLocation().getLineNr()
                                + ": unexpected text after the closing ] of the JSON array");
                    }
                    return null;
                }
                JsonNode node = parser.readValueAsTree();
                return node.isObject() ? new SourceRecord(file, node, line, null)
                        : new SourceRecord(file, null, line, NOT_AN_OBJECT);
            } catch (JsonProcessingException e) {
                long at = e.getLocation() != null && e.getLocation().getLineNr() > 0 ? e.getLocation().getLineNr() : line;
                throw new DataException(file + ":" + at + ": invalid JSON: " + firstLine(e.getOriginalMessage()), e);
            } catch (IOException e) {
                throw new DataException(file + ":" + line + ": cannot read: " + e.getMessage(), e);
            }
        }

        @Override
        public void close() throws IOException {
            parser.close();
        }
    }

    /** CSV with a header row; each further row one record of text fields. */
    private static final class Csv extends RecordReader {
        private final BufferedReader reader;
        private final List<String> header;
        private long line = 1;

        Csv(Path file) throws IOException {
            super(file);
            reader = utf8(file);
            List<String> names = readRow();
            header = names == null ? List.of() : names;
        }

        @Override
        SourceRecord next() throws DataException {
            try {
                long start;
                List<String> row;
                do {
                    start = line;
                    row = readRow();
                    if (row == null) {
                        return null;
                    }
                } while (row.size() == 1 && row.get(0).isEmpty());
                if (row.size() != header.size()) {
                    return new SourceRecord(file, null, start, new InvalidRecordException("wrong number of CSV fields",
                            "expected " + header.size() + " fields, found " + row.size()));
                }
                ObjectNode node = JSON.createObjectNode();
                for (int i = 0; i < row.size(); i++) {
                    if (row.get(i).isEmpty()) {
                        node.putNull(header.get(i));
                    } else {
                        node.put(header.get(i), row.get(i));
                    }
                }
                return new SourceRecord(file, node, start, null);
            } catch (StrictUtf8Reader.Malformed e) {
                throw notUtf8(file, e);
            } catch (IOException e) {
                throw new DataException(file + ":" + line + ": cannot read: " + e.getMessage(), e);
            }
        }

        /** One row's fields (quoted fields may hold commas, doubled quotes and newlines); null at the end. */
        private List<String> readRow() throws IOException {
            List<String> fields = new ArrayList<>();
            StringBuilder field = new StringBuilder();
            boolean quoted = false;
            int c = reader.read();
            if (c < 0) {
                return null;
            }
            while (true) {
                if (c < 0) {
                    fields.add(field.toString());
                    return fields;
                }
                if (quoted) {
                    if (c == '"') {
                        reader.mark(1);
                        if (reader.read() == '"') {
                            field.append('"');
                        } else {
                            reader.reset();
                            quoted = false;
                        }
                    } else {
                        if (c == '\n') {
                            line++;
                        }
                        field.append((char) c);
                    }
                } else if (c == '"') {
                    quoted = true;
                } else if (c == ',') {
                    fields.add(field.toString());
                    field.setLength(0);
                } else if (c == '\n' || c == '\r') {
                    if (c == '\r') {
                        reader.mark(1);
                        if (reader.read() != '\n') {
                            reader.reset();
                        }
                    }
                    line++;
                    fields.add(field.toString());
                    return fields;
                } else {
                    field.append((char) c);
                }
                c = reader.read();
            }
        }

        @Override
        public void close() throws IOException {
            reader.close();
        }
    }

    static String firstLine(String message) {
        if (message == null) {
            return "";
        }
        int nl = message.indexOf('\n');
        return nl < 0 ? message : message.substring(0, nl);
    }
}
