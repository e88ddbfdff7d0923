package io.qlora4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNotNull;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.io.BufferedReader;
import java.io.ByteArrayInputStream;
import java.io.ByteArrayOutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * {@link StrictUtf8Reader} and the dataset readers on it: a byte that is not UTF-8 is reported on its own line, even
 * thousands of lines after what a buffered reader has decoded ahead; text after a JSON array is refused by line.
 */
class StrictUtf8ReaderTest {
    @TempDir
    Path dir;

    /** {@code lines} JSON lines of multi-byte text, line {@code bad} holding a lone continuation byte 0x80. */
    private static byte[] jsonl(int lines, int bad) {
        ByteArrayOutputStream out = new ByteArrayOutputStream();
        for (int i = 1; i <= lines; i++) {
            out.writeBytes(("{\"text\": \"ligne n\u00b0 " + i + " \u2014 caf\u00e9\"}").getBytes(StandardCharsets.UTF_8));
            if (i == bad) {
                out.write(0x80);
            }
            out.write('\n');
        }
        return out.toByteArray();
    }

    @Test
    void badByteIsReportedOnItsLineAcrossBufferRefills() throws Exception {
        for (int bad : new int[] {1, 1733, 4000}) {
            StrictUtf8Reader.Malformed e = assertThrows(StrictUtf8Reader.Malformed.class, () -> {
                try (BufferedReader reader = new BufferedReader(new StrictUtf8Reader(
                        new ByteArrayInputStream(jsonl(4000, bad))))) {
                    while (reader.readLine() != null) {
                        // read to the bad byte
                    }
                }
            });
            assertEquals(bad, e.line());
        }
        try (BufferedReader reader = new BufferedReader(new StrictUtf8Reader(new ByteArrayInputStream(jsonl(3000, 0))))) {
            for (int i = 1; i <= 3000; i++) {
                assertEquals("{\"text\": \"ligne n\u00b0 " + i + " \u2014 caf\u00e9\"}", reader.readLine());
            }
            assertNull(reader.readLine());
        }
        StrictUtf8Reader last = new StrictUtf8Reader(new ByteArrayInputStream("a\nb\u00e9".getBytes(StandardCharsets.UTF_8)));
        char[] chars = new char[16];
        assertEquals(4, last.read(chars, 0, 16), "a last line without a newline");
        assertEquals("a\nb\u00e9", new String(chars, 0, 4));
        assertEquals(-1, last.read(chars, 0, 16));
        assertEquals(-1, last.read(chars, 0, 16), "and the end stays the end");
    }

    @Test
    void aByteOrderMarkBeforeTheTextIsDroppedAndOneInsideItKept() throws Exception {
        byte[] bom = {(byte) 0xEF, (byte) 0xBB, (byte) 0xBF};
        ByteArrayOutputStream file = new ByteArrayOutputStream();
        file.writeBytes(bom);
        file.writeBytes("a\n".getBytes(StandardCharsets.UTF_8));
        file.writeBytes(bom);
        file.writeBytes("b".getBytes(StandardCharsets.UTF_8));
        try (BufferedReader reader = new BufferedReader(new StrictUtf8Reader(new ByteArrayInputStream(file.toByteArray())))) {
            assertEquals("a", reader.readLine());
            assertEquals("\uFEFFb", reader.readLine());
            assertNull(reader.readLine());
        }
        // a file of the mark alone, or shorter than it, reads as what follows the mark
        try (BufferedReader reader = new BufferedReader(new StrictUtf8Reader(new ByteArrayInputStream(bom)))) {
            assertNull(reader.readLine());
        }
        try (BufferedReader reader = new BufferedReader(new StrictUtf8Reader(new ByteArrayInputStream(
                "x".getBytes(StandardCharsets.UTF_8))))) {
            assertEquals("x", reader.readLine());
        }
    }

    @Test
    void datasetFilesNameTheLineOfTheBadByte() throws Exception {
        Path jsonl = Files.write(dir.resolve("d.jsonl"), jsonl(3000, 2222));
        DataException e = assertThrows(DataException.class, () -> {
            try (RecordReader reader = RecordReader.open(jsonl)) {
                while (reader.next() != null) {
                    // read to the bad byte
                }
            }
        });
        assertEquals(jsonl + ":2222: not valid UTF-8", e.getMessage());
        Path csv = dir.resolve("d.csv");
        Files.write(csv, ("instruction,output\nhi,there\n\"two\nlines\",ok\ncaf").getBytes(StandardCharsets.UTF_8));
        Files.write(csv, new byte[] {(byte) 0xC3, ',', 'x', '\n'}, java.nio.file.StandardOpenOption.APPEND);
        DataException c = assertThrows(DataException.class, () -> {
            try (RecordReader reader = RecordReader.open(csv)) {
                while (reader.next() != null) {
                    // read to the bad byte
                }
            }
        });
        assertEquals(csv + ":5: not valid UTF-8", c.getMessage());
    }

    @Test
    void textAfterTheClosingBracketOfAJsonArrayIsRefused() throws Exception {
        Path file = Files.writeString(dir.resolve("d.json"), "[\n{\"instruction\": \"a\", \"output\": \"b\"}\n]\n\n{\"x\": 1}\n");
        DataException e = assertThrows(DataException.class, () -> {
            try (RecordReader reader = RecordReader.open(file)) {
                assertNotNull(reader.next());
                reader.next();
            }
        });
        assertEquals(file + ":5: unexpected text after the closing ] of the JSON array", e.getMessage());
        Path clean = Files.writeString(dir.resolve("clean.json"), "[{\"instruction\": \"a\", \"output\": \"b\"}]\n \n");
        try (RecordReader reader = RecordReader.open(clean)) {
            assertNotNull(reader.next());
            assertNull(reader.next());
        }
    }
}
