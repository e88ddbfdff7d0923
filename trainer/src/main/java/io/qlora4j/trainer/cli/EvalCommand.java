package io.qlora4j.trainer.cli;

import io.qlora4j.model.Tokenizer;
import io.qlora4j.model.generation.Perplexity;
import io.qlora4j.trainer.JobModels;
import io.qlora4j.model.generation.Perplexity;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/** {@code qlora4j eval}: token-weighted cross-entropy and perplexity of a model on a text file. */
@Command(name = "eval", description = {
    "Print a model's mean cross-entropy and perplexity over a file of texts.",
    "Every predicted token counts, of a .jsonl (field \"text\") or .txt (one text a line). Keys: model_name_or_path,",
    "dataset=FILE, adapter_name_or_path, cutoff_len, quantization_bit=4 (with quantization_type, double_quantization),",
    "device."})
final class EvalCommand extends JobCommand {
    @Option(names = "--json", description = "End with one JSON line: {\"tokens\": N, \"loss\": x, \"perplexity\": y}.")
    boolean json;

    @Override
    boolean namesUnreadKeys() {
        return true;
    }

    @Override
    int run(JobConfig config) throws Exception {
        Path dataset = Path.of(config.require("dataset"));
        int cutoff = config.integer("cutoff_len");
        PrintWriter out = out();
        PrintWriter err = err();
        Perplexity[] sums = {Perplexity.NONE};
        int[] counts = {0, 0}; // texts, longest
        try (ModelSetup setup = ModelSetup.load(config, err); Tokenizer tokenizer = setup.tokenizer()) {
            TextFile.forEach(dataset, text -> {
                long[] ids = tokenizer.encode(text);
                ids = ids.length > cutoff ? Arrays.copyOf(ids, cutoff) : ids;
                counts[1] = Math.max(counts[1], ids.length);
                sums[0] = sums[0].plus(Perplexity.of(setup.model, ids));
                counts[0]++;
            });
            JobModels.warnPastPositions(config, setup.model.config().maxPositionEmbeddings(),
                    setup.modelDir.resolve("config.json"), counts[1], warning -> err.println("warning: " + warning));
        }
        Perplexity total = sums[0];
        int texts = counts[0];
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
}
