package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.checkpoint.TinyModels;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class DataCommandTest {
    @TempDir
    Path dir;

    @Test
    void previewMarksTheTrainedSpanAndCountsTokens() throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        Path data = dir.resolve("train.json");
        Files.writeString(data, "[{\"instruction\": \"w5 w9\", \"input\": \"\", \"output\": \"w30\"},"
                + " {\"instruction\": \"w6\", \"input\": \"w7 w8 w9\", \"output\": \"w31 w32\"}]");
        CliRun cli = new CliRun();
        int rc = cli.run("data", "model_name_or_path=" + model,
                "dataset=" + data, "n=1", "template=default");
        assertEquals(0, rc, cli.err());
        List<String> all = cli.out().lines().toList();
        // the dataset's summary comes as it is read, before the examples
        assertEquals(data + ": 2 records kept, 0 skipped", all.get(0));
        List<String> lines = all.subList(1, all.size());
        // default template: "Human: " + user + eos + "\nAssistant:" | answer + eos + "\n"; the tiny word-level
        // tokenizer reads "Human", ":", "Assistant", ":" as <unk> and drops the newlines.
        assertEquals("--- example 1: 9 tokens, 2 trained", lines.get(0));
        assertEquals("<unk> <unk> w5 w9 </s> <unk> <unk>\u00abw30 </s>\u00bb", lines.get(1));
        assertTrue(lines.contains("2 training examples, 0 held out"), cli.out());
        // second example: 2 + (w6 \n w7 w8 w9 = 4) + 1 + 2 + 3 = 12 tokens
        assertTrue(lines.contains("lengths: min 9, median 12, max 12 tokens"), cli.out());
    }

    @Test
    void skippedRecordsAreCountedByReasonAndShownWithFileAndLineUnderDebug() throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        Path data = dir.resolve("mixed.jsonl");
        Files.writeString(data, "{\"instruction\": \"w5\", \"output\": \"w30\"}\n{\"instruction\": \"w6\"}\n"
                + "{\"instruction\": \n");
        CliRun cli = new CliRun();
        assertEquals(0, cli.run("data", "model_name_or_path=" + model, "dataset=" + data, "template=default"), cli.err());
        assertTrue(cli.out().contains(data + ": 1 records kept, 2 skipped (1 invalid JSON, 1 no response (output) to"
                + " train on)"), cli.out());
        assertTrue(!cli.out().contains("skipped record"), cli.out());
        assertEquals(0, cli.run("--debug", "data", "model_name_or_path=" + model, "dataset=" + data,
                "template=default"), cli.err());
        assertTrue(cli.out().contains(data + ":2: skipped record: no response (output) to train on"), cli.out());
        assertTrue(cli.out().contains(data + ":3: skipped record: invalid JSON: "), cli.out());
    }

    @Test
    void helpWorksOnEveryCommand() {
        CliRun cli = new CliRun();
        for (String command : List.of("train", "data", "eval", "generate", "export", "quantize", "inspect",
                "init-model")) {
            assertEquals(0, cli.run(command, "--help"), command + ": " + cli.err());
            assertTrue(cli.out().startsWith("Usage: qlora4j " + command), cli.out());
        }
    }

    /**
     * picocli lists a command by the first sentence of its description: each must be whole, a sentence ending in a
     * period right after a word, a bracket or a closing guillemet (not a sentence break picocli found inside a word
     * such as ".jsonl", nor a line cut short).
     */
    @Test
    void theCommandListGivesEachCommandAWholeSentence() {
        CliRun cli = new CliRun();
        assertEquals(0, cli.run("--help"), cli.err());
        String commands = cli.out().substring(cli.out().indexOf("Commands:") + "Commands:".length());
        Map<String, String> entries = new LinkedHashMap<>();
        String current = null;
        for (String line : commands.lines().toList()) {
            Matcher m = Pattern.compile("^  (\\S+)\\s+(.*)$").matcher(line);
            if (m.matches()) {
                current = m.group(1);
                entries.put(current, m.group(2).trim());
            } else if (current != null && !line.isBlank()) {
                entries.merge(current, line.trim(), (a, b) -> a + " " + b);
            }
        }
        assertEquals(List.of("quantize", "inspect", "eval", "generate", "data", "train", "export", "init-model"),
                List.copyOf(entries.keySet()));
        entries.forEach((command, summary) -> assertTrue(summary.matches(".*[\\w)\u00bb]\\.$"),
                command + ": " + summary));
    }
}
