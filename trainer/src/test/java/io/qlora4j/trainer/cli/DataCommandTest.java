package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.checkpoint.TinyModels;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
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
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        int rc = Main.run(new PrintWriter(out, true), new PrintWriter(err, true), "data", "model_name_or_path=" + model,
                "dataset=" + data, "n=1");
        assertEquals(0, rc, err.toString());
        List<String> lines = out.toString().lines().toList();
        // default template: "Human: " + user + eos + "\nAssistant:" | answer + eos + "\n"; the tiny word-level
        // tokenizer reads "Human", ":", "Assistant", ":" as <unk> and drops the newlines.
        assertEquals("--- example 1: 9 tokens, 2 trained", lines.get(0));
        assertEquals("<unk> <unk> w5 w9 </s> <unk> <unk>\u00abw30 </s>\u00bb", lines.get(1));
        assertTrue(lines.contains(data + ": 2 records kept, 0 skipped"), out.toString());
        assertTrue(lines.contains("2 training examples, 0 held out"), out.toString());
        // second example: 2 + (w6 \n w7 w8 w9 = 4) + 1 + 2 + 3 = 12 tokens
        assertTrue(lines.contains("lengths: min 9, median 12, max 12 tokens"), out.toString());
    }
}
