package io.qlora4j.trainer.cli;

import io.qlora4j.data.DataException;
import io.qlora4j.data.JsonlText;
import io.qlora4j.data.StrictUtf8Reader;
import io.qlora4j.trainer.config.ConfigException;
import java.io.BufferedReader;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;

/**
 * The texts of a plain-text dataset file as {@code eval} and AQLM calibration read it: a {@code .jsonl} file holds
 * one JSON object with a string field {@code text} per line (blank lines skipped), any other file one text per line;
 * bytes that are not UTF-8 are refused by line.
 */
final class TextFile {
    /** Receives each text. */
    @FunctionalInterface
    interface TextSink {
        void accept(String text) throws Exception;
    }

    private TextFile() {}

    /** Passes every text of {@code dataset} to {@code sink}, in order. */
    static void forEach(Path dataset, TextSink sink) throws Exception {
        if (Files.isDirectory(dataset)) {
            throw new ConfigException("dataset: " + dataset + " is a directory; expected one text file (.txt, one text"
                    + " a line, or .jsonl with a \"text\" field)");
        }
        boolean jsonl = dataset.getFileName().toString().endsWith(".jsonl");
        try (BufferedReader lines = new BufferedReader(new StrictUtf8Reader(Files.newInputStream(dataset)))) {
            String line;
            int lineNo = 0;
            while ((line = lines.readLine()) != null) {
                lineNo++;
                String text = jsonl ? jsonlText(dataset, lineNo, line) : line;
                if (text != null) {
                    sink.accept(text);
                }
            }
        } catch (NoSuchFileException e) {
            throw new ConfigException("dataset: " + dataset + ": no such file");
        } catch (StrictUtf8Reader.Malformed e) {
            throw new ConfigException(dataset + ":" + e.line() + ": not valid UTF-8");
        }
    }

    /** The jsonl line's {@code text} ({@link JsonlText}), null for a blank line. */
    private static String jsonlText(Path file, int lineNo, String line) throws ConfigException {
        try {
            return JsonlText.of(file, lineNo, line);
        } catch (DataException e) {
            throw new ConfigException(e.getMessage());
        }
    }
}
