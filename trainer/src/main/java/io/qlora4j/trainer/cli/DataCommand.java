package io.qlora4j.trainer.cli;

import io.qlora4j.data.DataPipeline;
import io.qlora4j.data.Example;
import io.qlora4j.data.TemplateTokenizer;
import io.qlora4j.model.TokenizerFile;
import io.qlora4j.trainer.JobData;
import io.qlora4j.trainer.config.JobConfig;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;

/** {@code qlora4j data}: what a job will train on, before any GPU hour is spent. */
@Command(name = "data", description = {
    "Print the first n formatted examples with the trained spans marked \u00ab like this \u00bb.",
    "Then their token counts, each dataset's kept and skipped records by reason (--debug: the first skipped ones with",
    "file and line) and a length histogram. Keys: the job's dataset keys (dataset, dataset_dir, template, cutoff_len,",
    "train_on_prompt, mask_history, max_samples, packing, stage), model_name_or_path (tokenizer), n (default 3)."})
final class DataCommand extends JobCommand {
    private static final int BINS = 10;

    @Override
    int run(JobConfig config) throws Exception {
        PrintWriter out = out();
        Path modelDir = Path.of(config.require("model_name_or_path"));
        TokenizerFile.read(modelDir); // checked before native code reads it
        try (TemplateTokenizer tokenizer = TemplateTokenizer.open(modelDir)) {
            DataPipeline data = DataPipeline.load(JobData.settings(config), tokenizer, dataLog());
            List<Example> train = data.train();
            TemplateTokenizer bound = data.tokenizer();
            int n = Math.min(config.integer("n"), train.size());
            for (int i = 0; i < n; i++) {
                Example e = train.get(i);
                out.printf(Locale.ROOT, "--- example %d: %d tokens, %d trained%n", i + 1, e.length(), trained(e));
                out.println(marked(bound, e));
            }
            out.printf(Locale.ROOT, "%d training examples, %d held out%n", train.size(), data.eval().size());
            histogram(out, train);
        }
        return 0;
    }

    private static long trained(Example e) {
        return Arrays.stream(e.labels()).filter(l -> l != Example.IGNORE_INDEX).count();
    }

    /** The example's text with each run of trained tokens between guillemets. */
    static String marked(TemplateTokenizer tokenizer, Example e) {
        StringBuilder text = new StringBuilder();
        int[] ids = e.inputIds();
        int start = 0;
        while (start < ids.length) {
            boolean isTrained = e.labels()[start] != Example.IGNORE_INDEX;
            int end = start;
            while (end < ids.length && (e.labels()[end] != Example.IGNORE_INDEX) == isTrained) {
                end++;
            }
            String piece = tokenizer.decode(Arrays.copyOfRange(ids, start, end));
            text.append(isTrained ? "\u00ab" + piece + "\u00bb" : piece);
            start = end;
        }
        return text.toString();
    }

    private static void histogram(PrintWriter out, List<Example> examples) {
        if (examples.isEmpty()) {
            return;
        }
        int[] lengths = examples.stream().mapToInt(Example::length).sorted().toArray();
        int min = lengths[0];
        int max = lengths[lengths.length - 1];
        int width = Math.max(1, (max - min + BINS) / BINS);
        int[] counts = new int[BINS];
        for (int length : lengths) {
            counts[Math.min(BINS - 1, (length - min) / width)]++;
        }
        int most = Arrays.stream(counts).max().orElse(1);
        out.printf(Locale.ROOT, "lengths: min %d, median %d, max %d tokens%n", min, lengths[lengths.length / 2], max);
        for (int b = 0; b < BINS && min + b * width <= max; b++) {
            out.printf(Locale.ROOT, "%6d-%-6d %6d %s%n", min + b * width, min + (b + 1) * width - 1, counts[b],
                    "#".repeat((int) Math.ceil(40.0 * counts[b] / most)));
        }
    }
}
