package io.qlora4j.data;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import java.nio.file.Path;

/**
 * One line of a plain-text {@code .jsonl} file as qlora4j's text readers take it ({@code eval}'s texts, AQLM and CVXQ
 * calibration): a JSON object with a string field {@code text}, read as dataset records are, with no cap on the
 * string's length.
 */
public final class JsonlText {
    private JsonlText() {}

    /**
     * The {@code text} of {@code line}, line {@code lineNo} of {@code file}; null for a blank line.
     *
     * @throws DataException naming the file and line when the line is not JSON or has no string {@code text}
     */
    public static String of(Path file, int lineNo, String line) throws DataException {
        if (line.isBlank()) {
            return null;
        }
        JsonNode text;
        try {
            text = RecordReader.JSON.readTree(line).path("text");
        } catch (JsonProcessingException e) {
            throw new DataException(file + ":" + lineNo + ": not valid JSON: "
                    + e.getOriginalMessage().lines().findFirst().orElse(""));
        }
        if (!text.isTextual()) {
            throw new DataException(file + ":" + lineNo + ": expected a JSON object with a string field \"text\"");
        }
        return text.asText();
    }
}
