package io.qlora4j.trainer.cli;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.data.StrictUtf8Reader;
import io.qlora4j.model.Tokenizer;
import io.qlora4j.model.llama.Perplexity;
import io.qlora4j.trainer.JobModels;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code qlora4j eval}: token-weighted cross-entropy and perplexity of a model on a text file. */
@Command(name = "eval", description = {
    "Mean cross-entropy and perplexity over every predicted token of a .jsonl (field \"text\") or .txt (one text a line).",
    "Keys: model_name_or_path, dataset=FILE, adapter_name_or_path, cutoff_len, quantization_bit=4 (with quantization_type,",
    "double_quantization), device."})
final class EvalCommand extends JobCommand {
    @Option(names = "--json", description = "End with one JSON line: {\"tokens\": N, \"loss\": x, \"perplexity\": y}.")
    boolean json;

    @Override
    int run(JobConfig config) throws Exception {
        Path dataset = Path.of(config.require("dataset"));
        int cutoff = config.integer("cutoff_len");
        PrintWriter out = out();
        PrintWriter err = err();
        Perplexity total = Perplexity.NONE;
        int texts = 0;
        int longest = 0;
        try (ModelSetup setup = ModelSetup.load(config, err);
                Tokenizer tokenizer = setup.tokenizer();
                BufferedReader lines = new BufferedReader(new StrictUtf8Reader(Files.newInputStream(dataset)))) {
            boolean jsonl = dataset.getFileName().toString().endsWith(".jsonl");
            ObjectMapper mapper = new ObjectMapper();
            String line;
            int lineNo = 0;
            while ((line = lines.readLine()) != null) {
                lineNo++;
                String text = jsonl ? text(mapper, dataset, lineNo, line) : line;
                if (text == null) {
                    continue;
                }
                long[] ids = tokenizer.encode(text);
                ids = ids.length > cutoff ? Arrays.copyOf(ids, cutoff) : ids;
                longest = Math.max(longest, ids.length);
                total = total.plus(Perplexity.of(setup.model, ids));
                texts++;
            }
            JobModels.warnPastPositions(config, setup.model.config().maxPositionEmbeddings(),
                    setup.modelDir.resolve("config.json"), longest, warning -> err.println("warning: " + warning));
        } catch (NoSuchFileException e) {
            throw new ConfigException("dataset: " + dataset + ": no such file");
        } catch (StrictUtf8Reader.Malformed e) {
            throw new ConfigException(dataset + ":" + e.line() + ": not valid UTF-8");
        }
        if (total.tokens() == 0) {
            throw new ConfigException("dataset: " + dataset + ": no text with at least two tokens to evaluate");
        }
        if (!Double.isFinite(total.loss())) {
            throw new ConfigException(dataset + ": the loss is " + total.loss() + " (the model's outputs overflow); no"
                    + " perplexity to report");
        }
        out.printf(Locale.ROOT, "%s: %d texts, %d predicted tokens, loss %.4f, perplexity %.3f%n", dataset, texts,
                total.tokens(), total.loss(), total.perplexity());
        if (json) {
            out.printf(Locale.ROOT, "{\"tokens\": %d, \"loss\": %s, \"perplexity\": %s}%n", total.tokens(),
                    Double.toString(total.loss()), Double.toString(total.perplexity()));
        }
        return 0;
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
