package io.qlora4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

import java.nio.file.Files;
import java.nio.file.Path;

class RecordReaderTest {

    @TempDir
    Path dir;

    @Test
    void csvRowsKeepQuotedCommasQuotesAndNewlinesAndTheirStartLine() throws Exception {
        Path file = dir.resolve("d.csv");
        Files.writeString(file, "\uFEFFinstruction,input,output\r\nhi,,fine\n\"how are you\",\"\",\"ok, \"\"bye\"\"\"\n"
                + "\"hi\nthere\",,ok\nbad,row\n");
        try (RecordReader reader = RecordReader.open(file)) {
            SourceRecord first = reader.next();
            assertEquals("{\"instruction\":\"hi\",\"input\":null,\"output\":\"fine\"}", first.node().toString());
            assertEquals(2, first.line());
            SourceRecord second = reader.next();
            assertEquals("ok, \"bye\"", second.node().get("output").asText());
            assertEquals(3, second.line());
            SourceRecord third = reader.next();
            assertEquals("hi\nthere", third.node().get("instruction").asText());
            assertEquals(4, third.line());
            SourceRecord bad = reader.next();
            assertEquals(6, bad.line());
            assertEquals("expected 3 fields, found 2", bad.error().getMessage());
            assertNull(reader.next());
        }
    }

    @Test
    void jsonlBrokenLinesComeBackWithTheirLineAndReason() throws Exception {
        Path file = dir.resolve("d.jsonl");
        Files.writeString(file, "{\"a\": 1}\n\n{\"a\": \n\"text\"\n");
        try (RecordReader reader = RecordReader.open(file)) {
            assertEquals(1, reader.next().line());
            SourceRecord broken = reader.next();
            assertEquals(3, broken.line());
            assertTrue(broken.error().getMessage().startsWith("invalid JSON: "), broken.error().getMessage());
            assertEquals("invalid JSON", broken.error().kind());
            assertEquals("not a JSON object", reader.next().error().getMessage());
            assertNull(reader.next());
        }
    }

    /** A byte order mark before JSON Lines is passed over, as before a CSV header or a JSON array: no record is lost. */
    @Test
    void jsonLinesAfterAByteOrderMarkLoseNoRecord() throws Exception {
        for (String name : new String[] {"d.jsonl", "d.json"}) {
            Path file = dir.resolve(name);
            Files.writeString(file, "\uFEFF{\"a\": 1}\n{\"a\": 2}\n");
            try (RecordReader reader = RecordReader.open(file)) {
                SourceRecord first = reader.next();
                assertNull(first.error(), name);
                assertEquals("{\"a\":1}", first.node().toString(), name);
                assertEquals(1, first.line(), name);
                assertEquals(2, reader.next().node().get("a").asInt(), name);
                assertNull(reader.next(), name);
            }
        }
    }

    /** A record whose text is longer than Jackson's default cap (20 million characters) is read, not called invalid. */
    @Test
    void aRecordWithAVeryLongTextIsRead() throws Exception {
        String text = "a".repeat(20_000_001);
        Files.writeString(dir.resolve("d.jsonl"), "{\"text\": \"" + text + "\"}\n");
        Files.writeString(dir.resolve("d.json"), "[{\"text\": \"" + text + "\"}]");
        for (String name : new String[] {"d.jsonl", "d.json"}) {
            try (RecordReader reader = RecordReader.open(dir.resolve(name))) {
                SourceRecord record = reader.next();
                assertNull(record.error(), name);
                assertEquals(text.length(), record.node().get("text").asText().length(), name);
            }
        }
    }

    @Test
    void brokenJsonArrayFailsNamingFileAndLine() throws Exception {
        Path file = dir.resolve("d.json");
        Files.writeString(file, "[\n  {\"a\": 1},\n  {\"a\": }\n]\n");
        try (RecordReader reader = RecordReader.open(file)) {
            assertEquals(2, reader.next().line());
            DataException e = assertThrows(DataException.class, reader::next);
            assertTrue(e.getMessage().startsWith(file + ":3: invalid JSON"), e.getMessage());
        }
    }

    @Test
    void unsupportedExtensionIsOneClearLine() {
        DataException e = assertThrows(DataException.class, () -> RecordReader.open(dir.resolve("d.parquet")));
        assertEquals(dir.resolve("d.parquet") + ": unsupported file type; expected .json, .jsonl, .csv or .txt",
                e.getMessage());
    }
}
