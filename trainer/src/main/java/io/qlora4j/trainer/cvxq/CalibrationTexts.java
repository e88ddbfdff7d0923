package io.qlora4j.trainer.cvxq;

import io.qlora4j.data.DataException;
import io.qlora4j.data.JsonlText;
import io.qlora4j.data.StrictUtf8Reader;
import io.qlora4j.model.Tokenizer;
import java.io.BufferedReader;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;

/**
 * Calibration sequences the reference's way ({@code dataset/c4.py}): the first {@code count} texts of a file that
 * have at least {@code length} tokens, each cut to its first {@code length} tokens. A {@code .jsonl} file gives one
 * text per line in its {@code text} field, any other file one text per line. Messages name the file (and line), not
 * the key: the caller reads both {@code dataset} and {@code cvxq_validation} with it.
 */
public final class CalibrationTexts {
    private CalibrationTexts() {}

    /**
     * Reads up to {@code count} sequences of exactly {@code length} tokens.
     *
     * @throws IllegalArgumentException naming the file when it has no text that long, and its line when a line is not
     *     UTF-8 or not a text record
     */
    public static List<long[]> read(Path file, Tokenizer tokenizer, int count, int length) throws IOException {
        boolean jsonl = file.getFileName().toString().endsWith(".jsonl");
        List<long[]> out = new ArrayList<>();
        try (BufferedReader lines = new BufferedReader(new StrictUtf8Reader(Files.newInputStream(file)))) {
            String line;
            int lineNo = 0;
            while (out.size() < count && (line = lines.readLine()) != null) {
                lineNo++;
                if (line.isBlank()) {
                    continue;
                }
                String text;
                try {
                    text = jsonl ? JsonlText.of(file, lineNo, line) : line;
                } catch (DataException e) {
                    throw new IllegalArgumentException(e.getMessage());
                }
                long[] ids = tokenizer.encode(text);
                if (ids.length >= length) {
                    out.add(Arrays.copyOf(ids, length));
                }
            }
        } catch (NoSuchFileException e) {
            throw new IllegalArgumentException(file + ": no such file");
        } catch (StrictUtf8Reader.Malformed e) {
            throw new IllegalArgumentException(file + ":" + e.line() + ": not valid UTF-8");
        }
        if (out.isEmpty()) {
            throw new IllegalArgumentException(file + " has no text of at least " + length
                    + " tokens for calibration (lower cutoff_len)");
        }
        return out;
    }
}
