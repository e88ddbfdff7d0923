package io.qlora4j.trainer.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.data.StrictUtf8Reader;
import io.qlora4j.trainer.config.ConfigException;
import java.io.BufferedReader;
import java.io.IOException;
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
        ObjectMapper mapper = new ObjectMapper();
        try (BufferedReader lines = new BufferedReader(new StrictUtf8Reader(Files.newInputStream(dataset)))) {
            String line;
            int lineNo = 0;
            while ((line = lines.readLine()) != null) {
                lineNo++;
                String text = jsonl ? text(mapper, dataset, lineNo, line) : line;
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

    /** The record's {@code text}, null for a blank line. */
    private static String text(ObjectMapper mapper, Path file, int lineNo, String line) throws ConfigException {
        if (line.isBlank()) {
            return null;
        }
        try {
            JsonNode text = mapper.readTree(line).path("text");
            if (!text.isTextual()) {
                throw new ConfigException(file + ":" + lineNo + ": expected a JSON object with a string field \"text\"");
            }
            return text.asText();
        } catch (IOException e) {
            throw new ConfigException(file + ":" + lineNo + ": not valid JSON: "
                    + e.getMessage().lines().findFirst().orElse(""));
        }
    }
}
