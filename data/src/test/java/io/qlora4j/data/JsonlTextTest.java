package io.qlora4j.data;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;

import java.nio.file.Path;
import org.junit.jupiter.api.Test;

class JsonlTextTest {
    private static final Path FILE = Path.of("texts.jsonl");

    @Test
    void aTextLongerThanJacksonsDefaultCapIsRead() throws Exception {
        // Jackson refuses strings over 20,000,000 characters unless told otherwise
        String text = "a".repeat(20_000_001);
        assertEquals(text.length(), JsonlText.of(FILE, 1, "{\"text\": \"" + text + "\"}").length());
    }

    @Test
    void blankLinesHaveNoTextAndBadLinesAreNamedByFileAndLine() throws Exception {
        assertNull(JsonlText.of(FILE, 1, "  "));
        assertEquals("hi", JsonlText.of(FILE, 2, "{\"text\": \"hi\", \"id\": 3}"));
        assertEquals("texts.jsonl:3: expected a JSON object with a string field \"text\"",
                assertThrows(DataException.class, () -> JsonlText.of(FILE, 3, "{\"text\": 5}")).getMessage());
        assertEquals("texts.jsonl:4: not valid JSON: Unrecognized token 'nope': was expecting (JSON String, Number,"
                + " Array, Object or token 'null', 'true' or 'false')",
                assertThrows(DataException.class, () -> JsonlText.of(FILE, 4, "nope")).getMessage());
    }
}
