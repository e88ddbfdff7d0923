package io.qlora4j.data;

import com.fasterxml.jackson.core.JsonParser;
import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.core.JsonToken;
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
 * pandas' NaN). The format follows the extension: {@code .jsonl} lines, {@code .json} array or
 * lines, {@code .csv}.
 */
abstract class RecordReader implements Closeable {

    static final ObjectMapper JSON = new ObjectMapper();

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
                return new Lines(file);
            }
            if (name.endsWith(".json")) {
                return firstNonBlank(file) == '[' ? new Array(file) : new Lines(file);
            }
            if (name.endsWith(".csv")) {
                return new Csv(file);
            }
        } catch (StrictUtf8Reader.Malformed e) {
            throw notUtf8(file, e);
        } catch (IOException e) {
            throw new DataException(file + ": cannot read: " + e.getMessage(), e);
        }
        throw new DataException(file + ": unsupported file type; expected .json, .jsonl or .csv");
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
            } while (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\uFEFF');
            return c;
        }
    }

    /** JSON Lines: each non-blank line one object. */
    private static final class Lines extends RecordReader {
        private final BufferedReader reader;
        private long line;

        Lines(Path file) throws IOException {
            super(file);
            reader = utf8(file);
        }

        @Override
        SourceRecord next() throws DataException {
            try {
                String text;
                do {
                    text = reader.readLine();
                    line++;
                    if (text == null) {
                        return null;
                    }
                } while (text.isBlank());
                try {
                    JsonNode node = JSON.readTree(text);
                    return node.isObject() ? new SourceRecord(file, node, line, null)
                            : new SourceRecord(file, null, line, "expected a JSON object");
                } catch (JsonProcessingException e) {
                    return new SourceRecord(file, null, line, "invalid JSON: " + e.getOriginalMessage());
                }
            } catch (StrictUtf8Reader.Malformed e) {
                throw notUtf8(file, e);
            } catch (IOException e) {
                throw new DataException(file + ":" + line + ": cannot read: " + e.getMessage(), e);
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
                        : new SourceRecord(file, null, line, "expected a JSON object");
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
            reader.mark(1);
            if (reader.read() != '\uFEFF') {
                reader.reset();
            }
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
                    return new SourceRecord(file, null, start, "expected " + header.size() + " fields, found " + row.size());
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
