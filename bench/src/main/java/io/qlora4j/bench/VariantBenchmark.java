package io.qlora4j.bench;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import ai.djl.ndarray.NDManager;
import io.qlora4j.adapters.AdapterInits;
import io.qlora4j.adapters.InitialAdapter;
import io.qlora4j.adapters.LoraAdapters;
import io.qlora4j.adapters.LoraSettings;
import io.qlora4j.model.Tokenizer;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.generation.Perplexity;
import io.qlora4j.trainer.Trainer;
import io.qlora4j.trainer.TrainingResult;
import io.qlora4j.trainer.config.JobConfig;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;
import io.qlora4j.model.family.ModelFamilies;

/**
 * The adapter variants over NF4 on the demo model ({@code examples/demo-base}): LoRA, DoRA, PiSSA, LoftQ and LoRA+
 * trained for the same steps from {@code configs/demo.yaml} on the demo task (the last three letters of a word) and
 * on a harder one made from the same words (the whole word reversed), each scored on its 100 held-out words before
 * and after training (loss per answer token, exact match of greedy answers). Also the held-out perplexity of the
 * LoftQ-initialised model before training against plain NF4 and the float32 base, and each variant's step time
 * against LoRA's (median training tokens/s of the logging windows after the first). Run from the repository root:
 * {@code VariantBenchmark [max_steps|-] [demo|reverse|both] [variant,variant,...]}: the first argument overrides
 * {@code max_steps} ({@code -}: the demo's 400), the second chooses the tasks, the third the variants by name prefix
 * ({@code LoRA,DoRA}; LoRA, the baseline of the step-time ratio, always runs).
 */
public final class VariantBenchmark {
    private static final Pattern ROW = Pattern.compile("\\s+(base|base \\+ adapter)\\s+([\\d.]+)%\\s+([\\d.]+)");

    private VariantBenchmark() {}

    /** One variant: its name and the job keys that choose it. */
    private record Variant(String name, List<String> keys) {}

    /** A base format and the adapter settings whose start goes over it (null: none). */
    private record Start(BaseFormat format, LoraSettings settings) {}

    /** What one run scored. */
    private record Scores(double lossBefore, double matchBefore, double lossAfter, double matchAfter,
            double tokensPerSecond, double seconds) {}

    private static final List<Variant> VARIANTS = List.of(
            new Variant("LoRA", List.of()),
            new Variant("DoRA", List.of("use_dora=true")),
            new Variant("PiSSA (pissa_iter 16)", List.of("pissa_init=true")),
            new Variant("LoftQ (loftq_iter 4)", List.of("loftq_init=true", "loftq_iter=4")),
            new Variant("LoftQ (loftq_iter 4, lora_alpha = r)", List.of("loftq_init=true", "loftq_iter=4",
                    "lora_alpha=16")),
            new Variant("LoRA+ (ratio 16)", List.of("loraplus_lr_ratio=16")));

    /** Runs every variant on both tasks and prints the tables. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        List<String> common = new ArrayList<>(List.of("overwrite_output_dir=true", "plot_loss=false",
                "save_steps=100000"));
        if (args.length > 0 && !args[0].equals("-")) {
            common.add("max_steps=" + Integer.parseInt(args[0]));
        }
        String which = args.length > 1 ? args[1] : "both";
        List<String> chosen = args.length > 2 ? Arrays.asList(args[2].split(",")) : List.of("");
        System.out.println(Machine.describe());
        if (!which.equals("reverse")) {
            startPerplexities();
        }
        Path work = Files.createTempDirectory("qlora4j-variants");
        Map<String, List<String>> tasks = new LinkedHashMap<>();
        if (!which.equals("reverse")) {
            tasks.put("last three letters (demo)", List.of());
        }
        if (!which.equals("demo")) {
            tasks.put("reverse the word", reverseTask(work.resolve("reverse")));
        }
        for (Map.Entry<String, List<String>> task : tasks.entrySet()) {
            Map<String, Scores> scores = new LinkedHashMap<>();
            for (Variant v : VARIANTS) {
                if (!v.name().equals("LoRA") && chosen.stream().noneMatch(v.name()::startsWith)) {
                    continue;
                }
                List<String> keys = new ArrayList<>(common);
                keys.addAll(task.getValue());
                keys.addAll(v.keys());
                keys.add("output_dir=" + work.resolve("run"));
                System.out.println("-- " + task.getKey() + ": " + v.name());
                scores.put(v.name(), run(keys, work.resolve("run")));
            }
            List<String> dense = new ArrayList<>(common);
            dense.addAll(task.getValue());
            dense.addAll(List.of("quantization_bit=", "max_steps=1", "output_dir=" + work.resolve("run")));
            System.out.println("-- " + task.getKey() + ": float32 base (held-out scores before training)");
            Scores base = run(dense, work.resolve("run"));
            print(task.getKey(), scores, base);
        }
        deleteRecursively(work);
    }

    /**
     * Genesis 1:1-8 (King James Version, public domain): text of the kind the demo model was pre-trained on, so its
     * perplexity measures how far a base (quantized, with an adapter's start) is from the float32 model.
     */
    private static final List<String> TEXT = List.of(
            "In the beginning God created the heaven and the earth.",
            "And the earth was without form, and void; and darkness was upon the face of the deep. And the Spirit of God"
                    + " moved upon the face of the waters.",
            "And God said, Let there be light: and there was light.",
            "And God saw the light, that it was good: and God divided the light from the darkness.",
            "And God called the light Day, and the darkness he called Night. And the evening and the morning were the"
                    + " first day.",
            "And God said, Let there be a firmament in the midst of the waters, and let it divide the waters from the"
                    + " waters.",
            "And God made the firmament, and divided the waters which were under the firmament from the waters which"
                    + " were above the firmament: and it was so.",
            "And God called the firmament Heaven. And the evening and the morning were the second day.");

    /**
     * The perplexity on {@link #TEXT} of the demo model as each start leaves it before any training: the float32
     * base, the NF4+DQ base (LoRA's start adds nothing), LoftQ's {@code Q + (alpha / r) L R} at the demo's r 16 with
     * alpha = r and alpha = 2r, and PiSSA's {@code Q(W_res) + s B A}.
     */
    private static void startPerplexities() throws Exception {
        Path demo = Path.of("examples/demo-base");
        LoraSettings alphaR = new LoraSettings(16, 16, 0, false, List.of("all"));
        LoraSettings alpha2r = new LoraSettings(16, 32, 0, false, List.of("all"));
        Map<String, Start> starts = new LinkedHashMap<>();
        starts.put("float32 base", new Start(BaseFormats.DENSE, null));
        starts.put("NF4+DQ base (LoRA's start)", new Start(BaseFormats.QLORA, null));
        for (int iterations : new int[] {1, 4}) {
            starts.put("LoftQ start, loftq_iter " + iterations + ", lora_alpha = r",
                    new Start(BaseFormats.QLORA, alphaR.withInit(AdapterInits.loftq(4, iterations))));
            starts.put("LoftQ start, loftq_iter " + iterations + ", lora_alpha = 2r (demo's)",
                    new Start(BaseFormats.QLORA, alpha2r.withInit(AdapterInits.loftq(4, iterations))));
        }
        starts.put("PiSSA start, pissa_iter 16", new Start(BaseFormats.QLORA, alpha2r.withInit(AdapterInits.pissa(16))));
        System.out.println("\nperplexity of Genesis 1:1-8 (KJV) before training, demo model, r 16");
        System.out.println("| start | perplexity |");
        try (Tokenizer tokenizer = Tokenizer.load(demo)) {
            for (Map.Entry<String, Start> e : starts.entrySet()) {
                BaseFormat format = e.getValue().format();
                LoraSettings settings = e.getValue().settings();
                try (NDManager m = NDManager.newBaseManager()) {
                    InitialAdapter start = settings == null ? null : InitialAdapter.fresh(settings,
                            ModelFamilies.read(demo.resolve("config.json")), 42);
                    CausalLM model = ModelLoader.builder().optFormat(format).optBaseRewrite(start).build()
                            .load(demo, m);
                    if (start != null) {
                        LoraAdapters.attach(model, settings, m, 42, start);
                    }
                    Perplexity total = Perplexity.NONE;
                    for (String line : TEXT) {
                        total = total.plus(Perplexity.of(model, tokenizer.encode(line)));
                    }
                    System.out.printf(Locale.ROOT, "| %s | %.4f |%n", e.getKey(), total.perplexity());
                }
            }
        }
    }

    /** Trains the demo job with {@code overrides} and reads the scores it printed and the speed it logged. */
    private static Scores run(List<String> overrides, Path output) throws Exception {
        StringWriter text = new StringWriter();
        long start = System.nanoTime();
        TrainingResult result = Trainer.train(JobConfig.load(Path.of("configs/demo.yaml"), overrides),
                new PrintWriter(text, true), false);
        double seconds = (System.nanoTime() - start) / 1e9;
        String log = text.toString();
        log.lines().filter(l -> l.startsWith("LoftQ ") || l.startsWith("base rewritten")).forEach(System.out::println);
        if (!result.completed()) {
            System.out.println("   stopped: " + result.failure());
            return new Scores(Double.NaN, Double.NaN, Double.NaN, Double.NaN, Double.NaN, seconds);
        }
        List<double[]> rows = new ArrayList<>();
        for (String line : log.lines().toList()) {
            Matcher m = ROW.matcher(line);
            if (m.matches()) {
                rows.add(new double[] {Double.parseDouble(m.group(2)) / 100,
                        Double.parseDouble(m.group(3))});
            }
        }
        List<Double> speeds = new ArrayList<>();
        List<String> metrics = Files.readAllLines(output.resolve("metrics.jsonl"));
        ObjectMapper json = new ObjectMapper();
        for (String line : metrics.subList(Math.min(1, metrics.size()), metrics.size())) {
            JsonNode entry = json.readTree(line);
            if (entry.has("tokens_per_s")) {
                speeds.add(entry.get("tokens_per_s").asDouble());
            }
        }
        double median = speeds.isEmpty() ? Double.NaN : ForwardBenchmark.median(speeds, Double::doubleValue);
        double[] before = rows.get(rows.size() - 2);
        double[] after = rows.get(rows.size() - 1);
        Scores s = new Scores(before[1], before[0], after[1], after[0], median, seconds);
        System.out.printf(Locale.ROOT, "   before: loss %.4f, exact %.1f%%; after: loss %.4f, exact %.1f%%;"
                + " %.0f tokens/s; %.0f s%n", s.lossBefore(), 100 * s.matchBefore(), s.lossAfter(),
                100 * s.matchAfter(), s.tokensPerSecond(), seconds);
        return s;
    }

    private static void print(String task, Map<String, Scores> scores, Scores base) {
        Scores lora = scores.get("LoRA");
        System.out.printf(Locale.ROOT, "%n%s: held-out scores after training, NF4+DQ base%n", task);
        System.out.printf(Locale.ROOT, "| %-38s | %9s | %11s | %22s | %21s |%n", "variant", "loss", "exact match",
                "perplexity before", "step time / LoRA's");
        for (Map.Entry<String, Scores> e : scores.entrySet()) {
            Scores s = e.getValue();
            System.out.printf(Locale.ROOT, "| %-38s | %9.4f | %10.1f%% | %22.3f | %21.2f |%n", e.getKey(), s.lossAfter(),
                    100 * s.matchAfter(), Math.exp(s.lossBefore()), lora.tokensPerSecond() / s.tokensPerSecond());
        }
        System.out.printf(Locale.ROOT, "| %-38s | %9s | %11s | %22.3f | %21s |%n", "float32 base, no adapter", "-", "-",
                Math.exp(base.lossBefore()), "-");
    }

    /**
     * The harder task's data in {@code dir}: the demo's words, each answered by itself reversed, and the keys that
     * point the demo job at them (answers up to the longest word, so room for them).
     */
    private static List<String> reverseTask(Path dir) throws IOException {
        Files.createDirectories(dir);
        ObjectMapper json = new ObjectMapper();
        ObjectNode info = json.createObjectNode();
        for (String split : List.of("train", "test")) {
            ArrayNode records = json.createArrayNode();
            for (JsonNode r : json.readTree(Path.of("examples/data/demo_" + split + ".json").toFile())) {
                String word = r.get("input").asText();
                records.addObject().put("instruction", "Write the word backwards.").put("input", word)
                        .put("output", new StringBuilder(word).reverse().toString());
            }
            json.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("reverse_" + split + ".json").toFile(), records);
            ObjectNode entry = info.putObject("reverse_" + split);
            entry.put("file_name", "reverse_" + split + ".json").put("formatting", "alpaca");
            entry.putObject("columns").put("prompt", "instruction").put("query", "input").put("response", "output");
        }
        json.writerWithDefaultPrettyPrinter().writeValue(dir.resolve("dataset_info.json").toFile(), info);
        return Arrays.asList("dataset_dir=" + dir, "dataset=reverse_train", "eval_dataset=reverse_test",
                "max_new_tokens=24", "cutoff_len=128");
    }

    private static void deleteRecursively(Path root) throws IOException {
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(java.util.Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
