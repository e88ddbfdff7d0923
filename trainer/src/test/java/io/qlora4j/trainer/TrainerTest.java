package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.data.Batch;
import io.qlora4j.data.DataException;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.optim.LossScaler;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.IntStream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;
import org.junit.jupiter.params.provider.ValueSource;

/** End-to-end runs of {@link Trainer} on a tiny model trained in full (every weight), through files. */
class TrainerTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private Path base;
    private Path dataset;
    private final StringWriter log = new StringWriter();

    @BeforeEach
    void setUp() throws Exception {
        base = TinyModel.write(dir.resolve("base"), 11);
        dataset = TinyTasks.write(dir.resolve("reverse.json"), "reverse", 8, 3);
    }

    private List<String> job(Path output, String... more) {
        List<String> keys = new ArrayList<>(List.of("model_name_or_path=" + base, "dataset=" + dataset,
                "output_dir=" + output, "finetuning_type=full", "learning_rate=0.01", "lr_scheduler_type=constant",
                "per_device_train_batch_size=4", "seed=3", "logging_steps=2", "max_grad_norm=1.0"));
        keys.addAll(List.of(more));
        return keys;
    }

    private TrainingResult train(List<String> keys) throws Exception {
        return Trainer.train(JobConfig.load(null, keys), new PrintWriter(log, true), false);
    }

    static Map<String, float[]> tensors(Path file) throws Exception {
        Map<String, float[]> out = new LinkedHashMap<>();
        try (SafetensorsReader reader = SafetensorsReader.open(file)) {
            for (TensorInfo info : reader.tensors()) {
                out.put(info.name(), reader.floats(info.name()));
            }
        }
        return out;
    }

    static void assertSameTensors(Map<String, float[]> expected, Map<String, float[]> actual) {
        assertEquals(expected.keySet(), actual.keySet());
        for (String name : expected.keySet()) {
            assertArrayEquals(expected.get(name), actual.get(name), name);
        }
    }

    /** Every file under {@code root} (but the lock, rewritten by each run) by relative path, with its bytes' hash. */
    private static Map<String, String> contents(Path root) throws Exception {
        Map<String, String> out = new java.util.TreeMap<>();
        try (var files = Files.walk(root)) {
            for (Path f : files.filter(Files::isRegularFile).filter(f -> !f.endsWith(DirectoryLock.FILE)).toList()) {
                out.put(root.relativize(f).toString(), java.util.HexFormat.of().formatHex(
                        java.security.MessageDigest.getInstance("SHA-256").digest(Files.readAllBytes(f))));
            }
        }
        return out;
    }

    /** The metrics lines without the wall-clock speed, which differs between runs. */
    private static List<String> withoutSpeed(Path metrics) throws Exception {
        return Files.readAllLines(metrics).stream().map(l -> l.replaceAll(",\"tokens_per_s\":[^}]*", "")).toList();
    }

    @Test
    void fullTrainingMemorisesASmallTaskAndWritesAModelDirectory() throws Exception {
        Path out = dir.resolve("out");
        // a chat template saved apart, as transformers saves it, travels with the trained model
        Files.writeString(base.resolve("chat_template.jinja"), "{{ messages }}");
        TrainingResult result = train(job(out, "max_steps=40", "plot_loss=true", "save_steps=100",
                "template=empty"));
        assertTrue(result.completed(), result.failure());
        List<JsonNode> metrics = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            metrics.add(JSON.readTree(line));
        }
        assertEquals(20, metrics.size());
        double first = metrics.get(0).get("loss").asDouble();
        double last = metrics.get(metrics.size() - 1).get("loss").asDouble();
        assertTrue(first > 2.0 && last < 0.25 * first, "loss " + first + " -> " + last);
        assertEquals(40, metrics.get(19).get("step").asInt());
        for (String key : List.of("epoch", "lr", "grad_norm", "tokens_per_s")) {
            assertTrue(metrics.get(19).has(key), key);
        }
        assertEquals(0.01, metrics.get(19).get("lr").asDouble(), 1e-12);
        assertEquals(20.0, metrics.get(19).get("epoch").asDouble(), 1e-9, "40 steps of 2 batches of 4 over 8 examples");
        byte[] png = Files.readAllBytes(out.resolve("training_loss.png"));
        assertEquals((byte) 0x89, png[0]);
        assertEquals("PNG", new String(png, 1, 3, java.nio.charset.StandardCharsets.US_ASCII));
        for (String file : List.of("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json",
                "chat_template.jinja", "trainer_state.json", "training_args.yaml")) {
            assertTrue(Files.isRegularFile(out.resolve(file)), file);
        }
        assertEquals(tensors(base.resolve("model.safetensors")).keySet(),
                tensors(out.resolve("model.safetensors")).keySet(), "Hugging Face tensor names");
        JsonNode state = JSON.readTree(out.resolve("trainer_state.json").toFile());
        assertEquals(40, state.get("global_step").asInt());
        assertEquals(20, state.get("log_history").size());
        assertEquals(3, state.get("seed").asInt());
        assertEquals(20, state.get("data_position").get("epoch").asInt());
        assertTrue(Files.readString(out.resolve("training_args.yaml")).contains("learning_rate: 0.01"));
        assertTrue(log.toString().contains("step 40/40"), log.toString());
    }

    @Test
    void resumeAfterAKillMidSaveEndsBitIdenticalToAnUninterruptedRun() throws Exception {
        String[] plan = {"max_steps=6", "save_steps=3", "gradient_accumulation_steps=2", "lr_scheduler_type=linear",
            "warmup_steps=2"};
        Path straight = dir.resolve("straight");
        assertTrue(train(job(straight, plan)).completed());
        // The other run is killed while saving step 6: its checkpoint-3 is complete, checkpoint-6 only staged
        // (a hidden directory with a half-written file), nothing published at the top yet.
        Path killed = dir.resolve("killed");
        assertTrue(train(job(killed, plan)).completed());
        Path staged = killed.resolve(".staging-checkpoint-6-123");
        Files.move(killed.resolve("checkpoint-6"), staged);
        Files.delete(staged.resolve("trainer_state.json"));
        Files.write(staged.resolve("optimizer.safetensors"), new byte[] {1, 2, 3});
        Files.delete(killed.resolve("model.safetensors"));
        Files.delete(killed.resolve("trainer_state.json"));
        Files.writeString(killed.resolve(".trainer_state.json.999.tmp"), "{\"global_st");

        TrainingResult resumed = train(job(killed, "max_steps=6", "save_steps=3", "gradient_accumulation_steps=2",
                "lr_scheduler_type=linear", "warmup_steps=2", "resume_from_checkpoint=true"));
        assertTrue(resumed.completed(), resumed.failure());
        assertTrue(log.toString().contains("step 4/6"), "continues after checkpoint-3: " + log);
        assertSameTensors(tensors(straight.resolve("model.safetensors")), tensors(killed.resolve("model.safetensors")));
        assertSameTensors(tensors(straight.resolve("checkpoint-6/optimizer.safetensors")),
                tensors(killed.resolve("checkpoint-6/optimizer.safetensors")));
        assertEquals(withoutSpeed(straight.resolve("metrics.jsonl")), withoutSpeed(killed.resolve("metrics.jsonl")));
        try (var entries = Files.list(killed)) {
            assertTrue(entries.noneMatch(p -> p.getFileName().toString().startsWith(".")
                    && !p.getFileName().toString().equals(DirectoryLock.FILE)), "leftovers removed");
        }
    }

    @ParameterizedTest
    @ValueSource(strings = {"adamw_torch", "paged_adamw_32bit", "paged_adamw_8bit", "adamw_8bit"})
    void resumeEndsBitIdenticalWithEveryOptimAndADifferentPagedBudget(String optim) throws Exception {
        // 64 wide: the MLP weights (8192 elements) get 8-bit state; the rest stays float32
        Path wide = TinyModel.write(dir.resolve("wide"), 5, 64);
        boolean paged = optim.startsWith("paged");
        Path straight = dir.resolve("straight");
        Path stopped = dir.resolve("stopped");
        assertTrue(train(wideJob(wide, straight, optim, paged ? "paged_budget_mb=0.0625" : null)).completed());
        assertTrue(train(wideJob(wide, stopped, optim, paged ? "paged_budget_mb=0.0625" : null)).completed());
        RunDirectory.deleteRecursively(stopped.resolve("checkpoint-4"));
        Files.delete(stopped.resolve("model.safetensors"));
        // resumed under a budget four times as large
        List<String> resume = wideJob(wide, stopped, optim, paged ? "paged_budget_mb=0.25" : null);
        resume.add("resume_from_checkpoint=" + stopped.resolve("checkpoint-2"));
        TrainingResult resumed = train(resume);
        assertTrue(resumed.completed(), resumed.failure());
        assertSameTensors(tensors(straight.resolve("model.safetensors")), tensors(stopped.resolve("model.safetensors")));
        Map<String, float[]> state = tensors(straight.resolve("checkpoint-4/optimizer.safetensors"));
        assertSameTensors(state, tensors(stopped.resolve("checkpoint-4/optimizer.safetensors")));
        assertEquals(optim.contains("8bit"),
                state.containsKey("model.layers.0.mlp.gate_proj.weight.exp_avg.codes"), state.keySet().toString());
        assertEquals(withoutSpeed(straight.resolve("metrics.jsonl")), withoutSpeed(stopped.resolve("metrics.jsonl")));
        JsonNode last = JSON.readTree(Files.readAllLines(straight.resolve("metrics.jsonl")).get(3));
        assertEquals(paged, last.get("state_host_bytes").asLong() > 0, last.toString());
        assertEquals(paged, last.get("paged_bytes_per_step").asLong() > 0, last.toString());
        assertTrue(last.get("state_device_bytes").asLong() <= (paged ? 1 << 16 : Long.MAX_VALUE), last.toString());
    }

    private List<String> wideJob(Path model, Path output, String optim, String budget) {
        List<String> keys = new ArrayList<>(List.of("model_name_or_path=" + model, "dataset=" + dataset,
                "output_dir=" + output, "finetuning_type=full", "learning_rate=0.01", "lr_scheduler_type=constant",
                "per_device_train_batch_size=4", "seed=3", "logging_steps=1", "max_grad_norm=1.0", "max_steps=4",
                "save_steps=2", "optim=" + optim, "paged_page_kb=16"));
        if (budget != null) {
            keys.add(budget);
        }
        return keys;
    }

    @Test
    void evalStepsScoresTheValSizeSplitIntoMetrics() throws Exception {
        Path out = dir.resolve("out");
        assertTrue(train(job(out, "max_steps=6", "save_steps=100", "val_size=4", "eval_steps=3")).completed());
        List<JsonNode> evals = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            JsonNode node = JSON.readTree(line);
            if (node.has("eval_loss")) {
                evals.add(node);
            }
        }
        assertEquals(List.of(3, 6), evals.stream().map(n -> n.path("step").asInt()).toList());
        for (JsonNode e : evals) {
            assertEquals(Math.exp(e.path("eval_loss").asDouble()), e.path("eval_perplexity").asDouble(), 1e-9);
        }
        assertTrue(log.toString().contains("eval at step 3: loss "), log.toString());
        ConfigException noSplit = assertThrows(ConfigException.class,
                () -> train(job(dir.resolve("b"), "max_steps=1", "eval_steps=1")));
        assertEquals("eval_steps: needs a held-out split; set val_size (a fraction < 1 or a count)", noSplit.getMessage());
        // eval_strategy: steps without eval_steps evaluates every logging_steps (2), as transformers falls back
        Path strategy = dir.resolve("strategy");
        assertTrue(train(job(strategy, "max_steps=4", "save_steps=100", "val_size=4", "eval_strategy=steps"))
                .completed());
        assertEquals(2, Files.readAllLines(strategy.resolve("metrics.jsonl")).stream()
                .filter(line -> line.contains("eval_loss")).count());
    }

    /** The steps of metrics.jsonl's log entries, then those of its held-out scores. */
    private static List<List<Integer>> loggedAndScoredSteps(Path out) throws Exception {
        List<Integer> logged = new ArrayList<>();
        List<Integer> scored = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            JsonNode node = JSON.readTree(line);
            (node.has("eval_loss") ? scored : logged).add(node.path("step").asInt());
        }
        return List.of(logged, scored);
    }

    @Test
    void dataSeedDrawsTheEpochOrderAloneAndEqualsSeedWhenUnset() throws Exception {
        // the same job with data_seed = seed writes the same adapter; another data_seed another one (another order)
        assertTrue(train(job(dir.resolve("plain"), "max_steps=2", "save_steps=100")).completed());
        assertTrue(train(job(dir.resolve("same"), "max_steps=2", "save_steps=100", "data_seed=3")).completed());
        assertTrue(train(job(dir.resolve("other"), "max_steps=2", "save_steps=100", "data_seed=4")).completed());
        byte[] plain = Files.readAllBytes(dir.resolve("plain").resolve("model.safetensors"));
        assertArrayEquals(plain, Files.readAllBytes(dir.resolve("same").resolve("model.safetensors")));
        assertFalse(Arrays.equals(plain, Files.readAllBytes(dir.resolve("other").resolve("model.safetensors"))));
    }

    @Test
    void epochStrategiesLogSaveAndScoreAtEachEpochsEndAndLoggingFirstStepLogsStepOne() throws Exception {
        // 8 records, 2 held out: 6 train in batches of 4 and 2, so each epoch is 2 steps and 3 epochs end at 2, 4, 6
        Path out = dir.resolve("out");
        List<String> keys = new ArrayList<>(job(out, "val_size=2", "num_train_epochs=3", "logging_strategy=epoch",
                "save_strategy=epoch", "eval_strategy=epoch", "logging_first_step=true"));
        keys.remove("logging_steps=2");
        assertTrue(train(keys).completed());
        assertEquals(List.of(List.of(1, 2, 4, 6), List.of(2, 4, 6)), loggedAndScoredSteps(out));
        for (int step : List.of(2, 4, 6)) {
            assertTrue(Files.isDirectory(out.resolve("checkpoint-" + step)), "checkpoint-" + step);
        }
        assertFalse(Files.exists(out.resolve("checkpoint-1")) || Files.exists(out.resolve("checkpoint-3")));
        // logging_strategy no: only the last step's entry, which qlora4j always writes
        Path quiet = dir.resolve("quiet");
        assertTrue(train(job(quiet, "max_steps=4", "logging_strategy=no", "save_steps=100")).completed());
        assertEquals(1, Files.readAllLines(quiet.resolve("metrics.jsonl")).size());
    }

    @Test
    void lrSchedulerKwargsReachTheScheduleAndTheOnesItDoesNotTakeAreRefusedBeforeAnythingIsWritten() throws Exception {
        // cosine_with_min_lr, min_lr_rate 0.5, 4 steps: 0.01 * (0.5 + 0.5 * (1 + cos(pi * (step - 1) / 4)) / 2)
        Path out = dir.resolve("out");
        assertTrue(train(job(out, "max_steps=4", "logging_steps=1", "save_steps=100",
                "lr_scheduler_type=cosine_with_min_lr", "lr_scheduler_kwargs={\"min_lr_rate\": 0.5}")).completed());
        List<String> lines = Files.readAllLines(out.resolve("metrics.jsonl"));
        for (int i = 0; i < 4; i++) {
            double expected = 0.01 * (0.5 + 0.25 * (1 + Math.cos(Math.PI * i / 4)));
            assertEquals(expected, JSON.readTree(lines.get(i)).get("lr").asDouble(), 1e-15, "step " + (i + 1));
        }
        Path refused = dir.resolve("refused");
        ConfigException e = assertThrows(ConfigException.class, () -> train(job(refused, "max_steps=2",
                "lr_scheduler_type=linear", "lr_scheduler_kwargs={\"num_cycles\": 2}")));
        assertEquals("lr_scheduler_kwargs: linear takes no settings, not num_cycles", e.getMessage());
        e = assertThrows(ConfigException.class, () -> train(job(refused, "max_steps=2",
                "lr_scheduler_type=cosine_with_min_lr")));
        assertEquals("lr_scheduler_kwargs: cosine_with_min_lr takes one of min_lr and min_lr_rate, got neither",
                e.getMessage());
        assertFalse(Files.exists(refused));
    }

    @Test
    void lrSchedulerKwargsThatWouldTakeTheRateBelowZeroOrToNanAreRefusedBeforeAnythingIsWritten() throws Exception {
        // each trained into a NaN, infinite or negative rate after the warmup: "internal error" and a metrics.jsonl
        // left behind; transformers raises ZeroDivisionError (min_lr over learning_rate 0, timescale 0), a math
        // domain error (a negative timescale) or trains on a negative rate (lr_end below 0)
        Path refused = dir.resolve("refused");
        Map<String, List<String>> jobs = new LinkedHashMap<>();
        jobs.put("lr_scheduler_kwargs: min_lr 1.0E-5 is a share of the learning rate, which is 0"
                + " (cosine_with_min_lr); set min_lr_rate instead", List.of("learning_rate=0",
                        "lr_scheduler_type=cosine_with_min_lr", "lr_scheduler_kwargs={\"min_lr\": 1e-5}"));
        jobs.put("lr_scheduler_kwargs: timescale 0.0 must be above 0 (inverse_sqrt divides the steps by it)",
                List.of("lr_scheduler_type=inverse_sqrt", "lr_scheduler_kwargs={\"timescale\": 0}"));
        jobs.put("lr_scheduler_kwargs: timescale -3.0 must be above 0 (inverse_sqrt divides the steps by it)",
                List.of("lr_scheduler_type=inverse_sqrt", "lr_scheduler_kwargs={\"timescale\": -3}"));
        jobs.put("lr_scheduler_kwargs: lr_end -0.001 must not be negative (polynomial ends at it)",
                List.of("lr_scheduler_type=polynomial", "lr_scheduler_kwargs={\"lr_end\": -1e-3}"));
        for (Map.Entry<String, List<String>> job : jobs.entrySet()) {
            List<String> keys = new ArrayList<>(job(refused, "max_steps=4", "warmup_steps=1", "save_steps=100"));
            keys.addAll(job.getValue());
            ConfigException e = assertThrows(ConfigException.class, () -> train(keys), job.getValue().toString());
            assertEquals(job.getKey(), e.getMessage());
            assertFalse(Files.exists(refused), job.getValue().toString());
        }
    }

    @Test
    void warmupRatioReplacesWarmupStepsAndAFractionIsAShareOfTheRunAsInTransformers5() throws Exception {
        // constant_with_warmup over 4 steps logs lr(step - 1) = 0.01 * (step - 1) / warmup during the warm-up
        Map<String, List<Double>> runs = new LinkedHashMap<>();
        runs.put("warmup_steps=3", List.of(0.0, 0.01 / 3, 0.02 / 3, 0.01));
        runs.put("warmup_ratio=0.5", List.of(0.0, 0.005, 0.01, 0.01)); // ceil(4 x 0.5) = 2, over warmup_steps 3
        runs.put("warmup_steps=0.5", List.of(0.0, 0.005, 0.01, 0.01));
        for (Map.Entry<String, List<Double>> run : runs.entrySet()) {
            Path out = dir.resolve(run.getKey().replace('=', '-'));
            List<String> keys = new ArrayList<>(job(out, "max_steps=4", "logging_steps=1", "save_steps=100",
                    "lr_scheduler_type=constant_with_warmup", run.getKey()));
            if (run.getKey().startsWith("warmup_ratio")) {
                keys.add("warmup_steps=3");
            }
            assertTrue(train(keys).completed());
            List<String> lines = Files.readAllLines(out.resolve("metrics.jsonl"));
            for (int i = 0; i < 4; i++) {
                assertEquals(run.getValue().get(i), JSON.readTree(lines.get(i)).get("lr").asDouble(), 1e-12,
                        run.getKey() + ", step " + (i + 1));
            }
        }
    }

    @Test
    void stepIntervalsBelowOneAreSharesOfTheRunAsInTransformers() throws Exception {
        // 8 steps: logging_steps 0.25 logs every ceil(2) steps, eval_steps 0.3 scores every ceil(2.4) = 3 (and at the
        // end), save_steps 0.5 checkpoints at 4 (and at the end)
        Path out = dir.resolve("out");
        assertTrue(train(job(out, "max_steps=8", "logging_steps=0.25", "val_size=4", "eval_steps=0.3",
                "save_steps=0.5")).completed());
        assertEquals(List.of(List.of(2, 4, 6, 8), List.of(3, 6, 8)), loggedAndScoredSteps(out));
        assertTrue(Files.isDirectory(out.resolve("checkpoint-4")) && Files.isDirectory(out.resolve("checkpoint-8")));
        assertFalse(Files.exists(out.resolve("checkpoint-2")));
        // above 1 a value must be whole, and 0 is no interval: refused before the output directory is touched
        for (String bad : List.of("logging_steps=2.5", "save_steps=0", "eval_steps=-1", "eval_steps=1.5")) {
            ConfigException e = assertThrows(ConfigException.class,
                    () -> train(job(out, "max_steps=2", "overwrite_output_dir=true", bad)));
            assertTrue(e.getMessage().startsWith(bad.substring(0, bad.indexOf('=')) + ": "), e.getMessage());
            assertTrue(Files.isDirectory(out.resolve("checkpoint-8")), "the earlier run is kept");
        }
        // as transformers: eval_steps 0 is logging_steps, and save_steps is not read without save_strategy steps
        Path zero = dir.resolve("zero");
        assertTrue(train(job(zero, "max_steps=4", "logging_steps=2", "val_size=4", "eval_steps=0",
                "save_strategy=no", "save_steps=0")).completed());
        assertEquals(2, Files.readAllLines(zero.resolve("metrics.jsonl")).stream()
                .filter(line -> line.contains("eval_loss")).count());
    }

    @Test
    void anEpochsLeftOverBatchesMakeAStepOfTheirOwnAsInTransformers() throws Exception {
        // 5 records in batches of 2 are 3 batches an epoch, [0 1] [2 3] [4]: accumulating 2, transformers makes
        // ceil(3 / 2) = 2 steps of each epoch, the second over record 4 alone, so 2 epochs are 4 steps
        Path five = TinyTasks.write(dir.resolve("five.json"), "copy", 5, 2);
        Path out = dir.resolve("out");
        assertTrue(train(List.of("model_name_or_path=" + base, "dataset=" + five, "output_dir=" + out,
                "finetuning_type=full", "template=default", "learning_rate=0", "per_device_train_batch_size=2",
                "gradient_accumulation_steps=2", "num_train_epochs=2", "train_sampling_strategy=sequential",
                "logging_steps=1", "save_steps=100")).completed());
        List<JsonNode> steps = new ArrayList<>();
        for (String line : Files.readAllLines(out.resolve("metrics.jsonl"))) {
            steps.add(JSON.readTree(line));
        }
        assertEquals(List.of(1, 2, 3, 4), steps.stream().map(n -> n.get("step").asInt()).toList());
        double[] epochs = {2 / 3.0, 1, 5 / 3.0, 2};
        for (int i = 0; i < epochs.length; i++) {
            assertEquals(epochs[i], steps.get(i).get("epoch").asDouble(), 1e-9, "step " + (i + 1));
        }
        // learning_rate 0 keeps the base: a step's loss is the base's over its records' answer tokens
        List<Batch> records = new ArrayList<>();
        for (JsonNode r : JSON.readTree(five.toFile())) {
            records.add(HeldOutEvalTest.answerBatch(TinyModel.ids("Human : copy \n " + r.get("input").asText()
                    + " </s> \n Assistant :"), TinyModel.ids(r.get("output").asText())));
        }
        try (NDManager manager = NDManager.newBaseManager()) {
            CausalLM model = ModelLoader.builder().build().load(base, manager);
            double firstFour = TrainStepTest.referenceLoss(model, manager, records.subList(0, 4));
            double lastOne = TrainStepTest.referenceLoss(model, manager, records.subList(4, 5));
            double[] losses = {firstFour, lastOne, firstFour, lastOne};
            for (int i = 0; i < losses.length; i++) {
                assertEquals(losses[i], steps.get(i).get("loss").asDouble(), 1e-4, "step " + (i + 1));
            }
        }
    }

    @Test
    void saveOnlyModelCheckpointsHoldNoOptimizerStateAndCannotBeResumed() throws Exception {
        Path out = dir.resolve("out");
        assertTrue(train(job(out, "max_steps=4", "save_steps=2", "save_only_model=true")).completed());
        assertTrue(Files.isRegularFile(out.resolve("checkpoint-2").resolve("model.safetensors")));
        assertFalse(Files.exists(out.resolve("checkpoint-2").resolve(OptimizerFile.FILE)));
        Path resumed = dir.resolve("resumed");
        ConfigException e = assertThrows(ConfigException.class, () -> train(job(resumed, "max_steps=4",
                "resume_from_checkpoint=" + out.resolve("checkpoint-2"))));
        assertEquals("resume_from_checkpoint: " + out.resolve("checkpoint-2") + " holds no optimizer state (saved with"
                + " save_only_model: true) and cannot be resumed; start a new run from its weights instead",
                e.getMessage());
        // without it, the same run's checkpoints carry the state
        Path full = dir.resolve("full");
        assertTrue(train(job(full, "max_steps=2", "save_steps=2")).completed());
        assertTrue(Files.isRegularFile(full.resolve("checkpoint-2").resolve(OptimizerFile.FILE)));
    }

    @Test
    void pagedBudgetIsRefusedForAnUnpagedOptimAndBelowOnePageKeepsOnePage() throws Exception {
        ConfigException unpaged = assertThrows(ConfigException.class,
                () -> train(job(dir.resolve("a"), "max_steps=1", "optim=adamw_8bit", "paged_budget_mb=1")));
        assertTrue(unpaged.getMessage().startsWith("paged_budget_mb: applies to paged_adamw_32bit"),
                unpaged.getMessage());
        // 0 asks for everything in host memory: one 16 KiB page, the least the store updates through, stays
        assertTrue(train(job(dir.resolve("b"), "max_steps=2", "optim=paged_adamw_32bit", "paged_budget_mb=0",
                "paged_page_kb=16")).completed(), log.toString());
        assertTrue(log.toString().contains("paged/step"), log.toString());
    }

    @Test
    void doTrainFalseIsRefusedNamingTheCommandThatScores() {
        ConfigException e = assertThrows(ConfigException.class, () -> train(job(dir.resolve("none"), "do_train=false")));
        assertEquals("do_train: false leaves train nothing to do; to score a model (and adapter) on held-out texts run"
                + " qlora4j eval", e.getMessage());
        assertFalse(Files.exists(dir.resolve("none")));
    }

    @Test
    void secondRunIntoANonEmptyOutputDirIsRefusedUnlessOverwriteOrResume() throws Exception {
        Path out = dir.resolve("out");
        assertTrue(train(job(out, "max_steps=2", "save_steps=1", "save_total_limit=1")).completed());
        assertTrue(Files.isDirectory(out.resolve("checkpoint-2")));
        assertFalse(Files.exists(out.resolve("checkpoint-1")), "save_total_limit 1 keeps the newest only");
        ConfigException refused = assertThrows(ConfigException.class, () -> train(job(out, "max_steps=2")));
        assertTrue(refused.getMessage().contains("output_dir " + out + " exists and is not empty"), refused.getMessage());
        // an overwriting job that stops before training (here a dataset that does not exist) leaves the earlier run
        Map<String, String> earlier = contents(out);
        assertThrows(DataException.class, () -> train(job(out, "max_steps=1", "overwrite_output_dir=true",
                "dataset=" + dir.resolve("missing.json"))));
        assertEquals(earlier, contents(out));
        assertTrue(train(job(out, "max_steps=1", "save_steps=5", "overwrite_output_dir=true")).completed());
        assertFalse(Files.exists(out.resolve("checkpoint-2")), "overwrite removes the earlier checkpoints");
        assertEquals(1, Files.readAllLines(out.resolve("metrics.jsonl")).size());
        assertTrue(Files.isDirectory(out.resolve("checkpoint-1")), "the last step is always saved, as transformers does");
        Path none = dir.resolve("none");
        ConfigException nothing = assertThrows(ConfigException.class,
                () -> train(job(none, "max_steps=3", "resume_from_checkpoint=true")));
        assertTrue(nothing.getMessage().contains("no complete checkpoint-N directory"), nothing.getMessage());
        assertFalse(Files.exists(none), "a run that wrote nothing removes the output_dir it created");
    }

    /** A run saving every step at {@code learning_rate}, unclipped, expected to stop early. */
    private TrainingResult diverging(Path out, String learningRate) throws Exception {
        TrainingResult result = train(job(out, "max_steps=5", "save_steps=1", "learning_rate=" + learningRate,
                "max_grad_norm=0"));
        assertFalse(result.completed());
        return result;
    }

    @Test
    void nonFiniteLossStopsTheRunAndKeepsTheLastGoodCheckpoint() throws Exception {
        Path out = dir.resolve("out");
        // an update of about 1e30 per weight keeps the weights finite but overflows the next forward pass
        TrainingResult result = diverging(out, "1e30");
        assertEquals(1, result.globalStep(), result.failure());
        assertEquals(out.resolve("checkpoint-1"), result.lastCheckpoint());
        assertTrue(result.failure().startsWith("loss is NaN at step 2"), result.failure());
        assertTrue(result.failure().endsWith("the last good checkpoint is " + out.resolve("checkpoint-1")));
        assertTrue(Files.isRegularFile(out.resolve("checkpoint-1/model.safetensors")));
        assertFalse(Files.exists(out.resolve("checkpoint-2")));
        assertFalse(Files.exists(out.resolve("model.safetensors")), "no final output from a diverged run");
    }

    @Test
    void updateToNonFiniteWeightsIsNeverSavedAsAGoodCheckpoint() throws Exception {
        Path out = dir.resolve("out");
        // an update of about 1e39 per weight overflows float32 itself: the loss of step 1 was finite, the weights are not
        TrainingResult result = diverging(out, "1e39");
        assertEquals(0, result.globalStep(), result.failure());
        assertEquals(null, result.lastCheckpoint());
        assertTrue(result.failure().matches("weight \\S+ is not finite after the update at step 1 \\(learning_rate"
                + " 1.0E39\\); stopped without saving: no checkpoint was saved yet"), result.failure());
        assertFalse(Files.exists(out.resolve("checkpoint-1")), "no checkpoint of non-finite weights");
        assertFalse(Files.exists(out.resolve("model.safetensors")));
    }

    private List<String> qlora(Path output, String... more) {
        List<String> keys = new ArrayList<>(List.of("model_name_or_path=" + base, "dataset=" + dataset,
                "output_dir=" + output, "quantization_bit=4", "lora_rank=4", "lora_dropout=0.2",
                "lora_target=q_proj,v_proj,down_proj", "learning_rate=0.01", "per_device_train_batch_size=2",
                "gradient_accumulation_steps=2", "seed=9", "logging_steps=1", "max_steps=6", "save_steps=3",
                "lr_scheduler_type=cosine", "warmup_ratio=0.2"));
        keys.addAll(List.of(more));
        return keys;
    }

    /** A way to run a job: {@link #train} or {@link #trainFloat16}. */
    private interface Run {
        TrainingResult apply(List<String> keys) throws Exception;
    }

    /** The {@link #qlora} job run to the end, its last checkpoint and adapter deleted, then resumed from step 3. */
    private Path stoppedAndResumed(String name, Run run, String... more) throws Exception {
        Path stopped = dir.resolve(name);
        assertTrue(run.apply(qlora(stopped, more)).completed());
        RunDirectory.deleteRecursively(stopped.resolve("checkpoint-6"));
        Files.delete(stopped.resolve("adapter_model.safetensors"));
        List<String> resume = new ArrayList<>(List.of(more));
        resume.add("resume_from_checkpoint=" + stopped.resolve("checkpoint-3"));
        TrainingResult resumed = run.apply(qlora(stopped, resume.toArray(String[]::new)));
        assertTrue(resumed.completed(), resumed.failure());
        return stopped;
    }

    private TrainingResult trainFloat16(List<String> keys) throws Exception {
        return Trainer.train(JobConfig.load(null, keys), new PrintWriter(log, true), false, Device.cpu(),
                DataType.FLOAT16);
    }

    @Test
    void float16QloraRunScalesItsLossAndResumesBitIdenticalWithTheScale() throws Exception {
        Path straight = dir.resolve("straight16");
        TrainingResult first = trainFloat16(qlora(straight));
        assertTrue(first.completed(), first.failure());
        JsonNode state = JSON.readTree(straight.resolve("checkpoint-3").resolve(TrainerState.FILE).toFile());
        float scale = (float) state.get("loss_scale").asDouble();
        int goodSteps = state.get("loss_scale_good_steps").asInt();
        // torch's GradScaler from 2^16: halved at each overflowed (skipped) step, which the log names
        long skipped = log.toString().lines().filter(l -> l.matches("step [123]: float16 gradients overflowed.*")).count();
        assertEquals(3 - skipped, goodSteps, log.toString());
        assertEquals(LossScaler.INITIAL_SCALE / (1 << skipped), scale, log.toString());
        float[] trainedB = tensors(straight.resolve("adapter_model.safetensors"))
                .get("base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight");
        assertTrue(IntStream.range(0, trainedB.length).anyMatch(i -> trainedB[i] != 0f), "some steps were taken");

        Path stopped = stoppedAndResumed("stopped16", this::trainFloat16);
        assertSameTensors(tensors(straight.resolve("adapter_model.safetensors")),
                tensors(stopped.resolve("adapter_model.safetensors")));
        assertEquals(JSON.readTree(straight.resolve("checkpoint-6").resolve(TrainerState.FILE).toFile()).get("loss_scale"),
                JSON.readTree(stopped.resolve("checkpoint-6").resolve(TrainerState.FILE).toFile()).get("loss_scale"));

        // resumed at a scale of 2^60 every step overflows float16: skipped, halving the scale, the adapter untouched
        Path overflowing = dir.resolve("overflowing16");
        assertTrue(trainFloat16(qlora(overflowing)).completed());
        Path checkpoint = overflowing.resolve("checkpoint-3");
        Path stateFile = checkpoint.resolve(TrainerState.FILE);
        Files.writeString(stateFile, Files.readString(stateFile).replaceFirst("\"loss_scale\" : [0-9.E]+",
                "\"loss_scale\" : 1.15292150460684698E18"));
        RunDirectory.deleteRecursively(overflowing.resolve("checkpoint-6"));
        log.getBuffer().setLength(0);
        TrainingResult skipping = trainFloat16(qlora(overflowing, "resume_from_checkpoint=" + checkpoint));
        assertTrue(skipping.completed(), skipping.failure());
        assertEquals(3, log.toString().lines().filter(l -> l.matches("step [456]: float16 gradients overflowed.*")).count(),
                log.toString());
        JsonNode end = JSON.readTree(overflowing.resolve("checkpoint-6").resolve(TrainerState.FILE).toFile());
        assertEquals(0x1p57f, (float) end.get("loss_scale").asDouble());
        assertEquals(0, end.get("loss_scale_good_steps").asInt());
        assertSameTensors(tensors(checkpoint.resolve("adapter_model.safetensors")),
                tensors(overflowing.resolve("adapter_model.safetensors")));
    }

    @Test
    void qloraRunWritesAPeftAdapterAndResumesBitIdentical() throws Exception {
        Path straight = dir.resolve("straight");
        TrainingResult first = train(qlora(straight));
        assertTrue(first.completed(), first.failure());
        JsonNode config = JSON.readTree(straight.resolve("adapter_config.json").toFile());
        assertEquals("LORA", config.get("peft_type").asText());
        assertEquals(4, config.get("r").asInt());
        assertEquals(8.0, config.get("lora_alpha").asDouble(), "LLaMA-Factory's default alpha = 2 x rank");
        assertEquals(0.2, config.get("lora_dropout").asDouble());
        assertEquals(base.toString(), config.get("base_model_name_or_path").asText());
        assertFalse(config.has("qlora4j"), "adapter_config.json holds PEFT's keys only");
        JsonNode record = JSON.readTree(straight.resolve("qlora4j.json").toFile()).get("base_format");
        assertEquals("bnb", record.get("quantization_method").asText());
        assertEquals(4, record.get("quantization_bit").asInt());
        assertEquals("nf4", record.get("quantization_type").asText());
        assertTrue(Files.readString(straight.resolve("README.md")).contains("bitsandbytes NF4+DQ, blocksize 64"));
        Map<String, float[]> adapter = tensors(straight.resolve("adapter_model.safetensors"));
        assertEquals(2 * 3 * 2, adapter.size(), "A and B of 3 modules in 2 layers");
        try (SafetensorsReader reader = SafetensorsReader.open(straight.resolve("adapter_model.safetensors"))) {
            String q = "base_model.model.model.layers.1.self_attn.q_proj.";
            assertArrayEquals(new long[] {4, 16}, reader.info(q + "lora_A.weight").shape());
            assertArrayEquals(new long[] {16, 4}, reader.info(q + "lora_B.weight").shape());
            assertArrayEquals(new long[] {16, 4},
                    reader.info("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight").shape());
            assertEquals(Map.of("format", "pt"), reader.metadata());
        }
        assertFalse(Files.exists(straight.resolve("model.safetensors")), "LoRA writes only the adapter");

        Path stopped = stoppedAndResumed("stopped", this::train);
        assertSameTensors(adapter, tensors(stopped.resolve("adapter_model.safetensors")));
        assertSameTensors(tensors(straight.resolve("checkpoint-6/optimizer.safetensors")),
                tensors(stopped.resolve("checkpoint-6/optimizer.safetensors")));
        assertEquals(withoutSpeed(straight.resolve("metrics.jsonl")), withoutSpeed(stopped.resolve("metrics.jsonl")));
    }

    static List<BaseFormat> everyBaseFormat() {
        return BaseFormats.menu();
    }

    @ParameterizedTest
    @MethodSource("everyBaseFormat")
    void loraOverEveryBaseFormatWithAPagedOptimizerRecordsTheFormatAndResumesBitIdentical(BaseFormat format)
            throws Exception {
        List<String> keys = new ArrayList<>(List.of("optim=paged_adamw_32bit"));
        format.keys().forEach((key, value) -> keys.add(key + "=" + value));
        String[] more = keys.toArray(String[]::new);
        Path straight = dir.resolve("straight");
        TrainingResult first = train(qlora(straight, more));
        assertTrue(first.completed(), first.failure());
        assertEquals(JSON.valueToTree(format.keys()), JSON.readTree(straight.resolve("qlora4j.json").toFile())
                .get("base_format"));
        assertTrue(Files.readString(straight.resolve("README.md")).contains(format.describe()));
        Path stopped = stoppedAndResumed("stopped", this::train, more);
        assertSameTensors(tensors(straight.resolve("adapter_model.safetensors")),
                tensors(stopped.resolve("adapter_model.safetensors")));
    }

    @Test
    void evalDatasetPrintsTheSameBeforeAfterTableOnTwoRunsWithOneSeed() throws Exception {
        Path heldOut = TinyTasks.write(dir.resolve("held-out.json"), "reverse", 4, 3);
        List<String> tables = new ArrayList<>();
        for (String run : List.of("a", "b")) {
            StringWriter out = new StringWriter();
            List<String> keys = job(dir.resolve(run), "max_steps=3", "eval_dataset=" + heldOut,
                    "predict_with_generate=true", "max_new_tokens=4");
            assertTrue(Trainer.train(JobConfig.load(null, keys), new PrintWriter(out, true), false).completed());
            String text = out.toString();
            assertTrue(text.contains("held-out evaluation on " + heldOut + " (4 examples)"), text);
            tables.add(text.substring(text.indexOf("held-out evaluation")));
        }
        assertEquals(tables.get(0), tables.get(1));
        assertTrue(tables.get(0).lines().filter(l -> l.startsWith("  example ")).count() == 3, tables.get(0));
    }
}
