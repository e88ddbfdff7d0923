package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.adapters.InitialAdapter;
import io.qlora4j.adapters.LoraAdapters;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.optim.Parameter;
import io.qlora4j.trainer.cli.Main;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;
import org.junit.jupiter.params.provider.ValueSource;

/** QLoRA runs with the adapter variants and LoRA+: PEFT files, exact resume, LLaMA-Factory's groups and refusals. */
class AdapterVariantTrainingTest {
    @TempDir
    Path dir;

    private Path base;
    private Path dataset;

    @BeforeEach
    void writeModelAndTask() throws Exception {
        base = TinyModel.write(dir.resolve("base"), 21);
        dataset = TinyTasks.write(dir.resolve("reverse.json"), "reverse", 8, 3);
    }

    /** A 6-step NF4 QLoRA job with dropout, checkpoints at steps 3 and 6, plus {@code variant} (space-separated keys). */
    private List<String> job(Path output, String variant, String... more) {
        List<String> keys = new ArrayList<>(List.of("model_name_or_path=" + base, "dataset=" + dataset,
                "output_dir=" + output, "quantization_bit=4", "lora_rank=4", "lora_dropout=0.2",
                "lora_target=q_proj,v_proj,down_proj", "learning_rate=0.01", "per_device_train_batch_size=2",
                "gradient_accumulation_steps=2", "seed=9", "logging_steps=1", "max_steps=6", "save_steps=3"));
        keys.addAll(Arrays.asList(variant.split(" ")));
        keys.addAll(List.of(more));
        return keys;
    }

    private TrainingResult train(List<String> keys) throws Exception {
        return Trainer.train(JobConfig.load(null, keys), new PrintWriter(new StringWriter(), true), false);
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"use_dora=true", "loraplus_lr_ratio=16", "use_dora=true loraplus_lr_ratio=4",
        "pissa_init=true pissa_iter=2", "pissa_init=true pissa_iter=-1 use_dora=true", "loftq_init=true loftq_iter=2"})
    void variantRunResumesBitIdentical(String variant) throws Exception {
        Path straight = dir.resolve("straight");
        TrainingResult first = train(job(straight, variant));
        assertTrue(first.completed(), first.failure());
        boolean dora = variant.contains("use_dora");
        assertEquals(dora, new ObjectMapper().readTree(straight.resolve("adapter_config.json").toFile())
                .get("use_dora").asBoolean());
        assertEquals(dora, TrainerTest.tensors(straight.resolve("adapter_model.safetensors")).keySet().stream()
                .anyMatch(k -> k.endsWith(".lora_magnitude_vector")));

        Path stopped = dir.resolve("stopped");
        assertTrue(train(job(stopped, variant)).completed());
        RunDirectory.deleteRecursively(stopped.resolve("checkpoint-6"));
        Files.delete(stopped.resolve("adapter_model.safetensors"));
        TrainingResult resumed = train(job(stopped, variant, "resume_from_checkpoint=" + stopped.resolve("checkpoint-3")));
        assertTrue(resumed.completed(), resumed.failure());
        TrainerTest.assertSameTensors(TrainerTest.tensors(straight.resolve("adapter_model.safetensors")),
                TrainerTest.tensors(stopped.resolve("adapter_model.safetensors")));
        TrainerTest.assertSameTensors(TrainerTest.tensors(straight.resolve("checkpoint-6/optimizer.safetensors")),
                TrainerTest.tensors(stopped.resolve("checkpoint-6/optimizer.safetensors")));
    }

    /**
     * PEFT loads a randomised-SVD PiSSA adapter by drawing its own sketch, another base: the run says so and names
     * what PEFT reproduces (pissa_convert, or the exact SVD), and says nothing when it is either.
     */
    @ParameterizedTest(name = "{0}")
    @CsvSource({"pissa_iter=2, true", "pissa_iter=-1, false", "pissa_iter=2 pissa_convert=true, false"})
    void aRandomisedPissaRunWarnsThatPeftDrawsItsOwnSketch(String keys, boolean warned) throws Exception {
        StringWriter log = new StringWriter();
        List<String> job = job(dir.resolve("p"), "pissa_init=true " + keys, "max_steps=1");
        assertTrue(Trainer.train(JobConfig.load(null, job), new PrintWriter(log, true), false).completed());
        assertEquals(warned, log.toString().contains("warning: PEFT re-runs PiSSA's randomised SVD with its own random"
                + " sketch when it loads this adapter"), log.toString());
    }

    /**
     * A job that leaves the top layer (of two) out of the recompute writes the adapter and optimizer state of the job
     * that recomputes both, byte for byte, under dropout, with LoRA and with DoRA (whose weight norm the skipped
     * layer's graph records as the recompute's does).
     */
    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"use_dora=false", "use_dora=true"})
    void skippingLayersOfTheRecomputeTrainsTheSameAdapter(String variant) throws Exception {
        Path full = dir.resolve("full");
        assertTrue(train(job(full, variant)).completed());
        Path skipping = dir.resolve("skipping");
        TrainingResult skipped = train(job(skipping, variant, "gradient_checkpointing_skip_layers=1"));
        assertTrue(skipped.completed(), skipped.failure());
        TrainerTest.assertSameTensors(TrainerTest.tensors(full.resolve("adapter_model.safetensors")),
                TrainerTest.tensors(skipping.resolve("adapter_model.safetensors")));
        TrainerTest.assertSameTensors(TrainerTest.tensors(full.resolve("checkpoint-6/optimizer.safetensors")),
                TrainerTest.tensors(skipping.resolve("checkpoint-6/optimizer.safetensors")));
    }

    @Test
    void loraPlusPutsBAndTheMagnitudeInTheRatioGroupAndAInTheBaseGroup() throws Exception {
        JobConfig config = JobConfig.load(null, job(dir.resolve("out"), "use_dora=true loraplus_lr_ratio=16"));
        try (NDManager m = NDManager.newBaseManager();
                CausalLM model = JobModels.loader(config, ai.djl.ndarray.types.DataType.FLOAT32, null, line -> { }).load(base, m)) {
            List<Parameter> params = LoraWeights.create(config, model, m, null, null).parameters();
            assertEquals(2 * 3 * 3, params.size(), "A, B and m of 3 modules in 2 layers");
            for (Parameter p : params) {
                double expected = p.name().endsWith("lora_A.weight") ? 1 : 16;
                assertEquals(expected, p.lrScale(), p.name());
            }
        }
    }

    @Test
    void loraPlusChangesTheRunAndUnsetRatioTrainsEveryMatrixAtTheSameRate() throws Exception {
        assertTrue(train(job(dir.resolve("plain"), "seed=9")).completed());
        assertTrue(train(job(dir.resolve("plus"), "loraplus_lr_ratio=16")).completed());
        var plain = TrainerTest.tensors(dir.resolve("plain/adapter_model.safetensors"));
        var plus = TrainerTest.tensors(dir.resolve("plus/adapter_model.safetensors"));
        String b = "base_model.model.model.layers.0.self_attn.q_proj.lora_B.weight";
        assertFalse(Arrays.equals(plain.get(b), plus.get(b)));
    }

    @Test
    void pissaConvertWritesALoraOnTheOriginalWeightsThatComputesTheTrainedModel() throws Exception {
        Path out = dir.resolve("pissa");
        List<String> keys = new ArrayList<>(job(out, "pissa_init=true pissa_iter=-1 pissa_convert=true lora_dropout=0"));
        keys.remove("quantization_bit=4"); // a dense base: the converted adapter is exact there
        assertTrue(train(keys).completed());
        Path converted = out.resolve(LoraWeights.CONVERTED);
        var config = new ObjectMapper().readTree(converted.resolve("adapter_config.json").toFile());
        assertEquals(8, config.get("r").asInt());
        assertTrue(config.get("init_lora_weights").asBoolean());
        assertEquals("pissa", new ObjectMapper().readTree(out.resolve("adapter_config.json").toFile())
                .get("init_lora_weights").asText());
        float[] trained = logits(out);
        float[] onOriginal = logits(converted);
        double worst = 0;
        double largest = 0;
        for (int i = 0; i < trained.length; i++) {
            worst = Math.max(worst, Math.abs(trained[i] - onOriginal[i]));
            largest = Math.max(largest, Math.abs(trained[i]));
        }
        assertTrue(worst <= 1e-5 * largest, "max difference " + worst + " of " + largest);
        // eval rebuilds the PiSSA adapter's residual base; the converted adapter needs none
        Path text = Files.writeString(dir.resolve("eval.txt"), "reverse a b c : c b a\n");
        double rebuilt = evalLoss("adapter_name_or_path=" + out, "dataset=" + text);
        assertEquals(rebuilt, evalLoss("adapter_name_or_path=" + converted, "dataset=" + text), 1e-5 * rebuilt);
        assertTrue(Math.abs(rebuilt - evalLoss("dataset=" + text)) > 1e-4, "the adapter changes the loss");
    }

    /** {@code qlora4j eval --json} on the base with {@code keys}: the loss it reports. */
    private double evalLoss(String... keys) throws Exception {
        List<String> args = new ArrayList<>(List.of("eval", "model_name_or_path=" + base, "--json"));
        args.addAll(List.of(keys));
        StringWriter out = new StringWriter();
        StringWriter err = new StringWriter();
        assertEquals(0, Main.run(new PrintWriter(out, true), new PrintWriter(err, true), args.toArray(String[]::new)),
                err.toString());
        List<String> lines = out.toString().lines().toList();
        return new ObjectMapper().readTree(lines.get(lines.size() - 1)).get("loss").asDouble();
    }

    @Test
    void loftqRunLogsTheReconstructionErrorOfEveryIteration() throws Exception {
        StringWriter out = new StringWriter();
        assertTrue(Trainer.train(JobConfig.load(null, job(dir.resolve("loftq"), "loftq_init=true loftq_iter=3",
                "max_steps=1")), new PrintWriter(out, true), false).completed());
        List<String> lines = out.toString().lines().filter(l -> l.startsWith("LoftQ ")).toList();
        assertEquals(4, lines.size(), out.toString());
        assertTrue(lines.get(2).matches("LoftQ iteration 3: \\|\\|W - \\(Q \\+ L R\\)\\|\\| / \\|\\|W\\|\\| = 0\\.\\d+ over 6"
                + " projections"), lines.get(2));
    }

    @ParameterizedTest(name = "{0}")
    @CsvSource({"pissa_init=true loftq_init=true, pissa_init and loftq_init", "pissa_convert=true, pissa_convert:",
        "loftq_init=true loftq_bits=8, loftq_bits:"})
    void combinationsPeftForbidsAreRefusedInOneLine(String keys, String start) {
        ConfigException e = assertThrows(ConfigException.class, () -> train(job(dir.resolve("refused"), keys)));
        assertFalse(e.getMessage().contains("\n"), e.getMessage());
        assertTrue(e.getMessage().startsWith(start), e.getMessage());
    }

    /** The logits of a fixed sequence through the base with the adapter in {@code adapterDir}. */
    private float[] logits(Path adapterDir) throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            InitialAdapter start = InitialAdapter.of(adapterDir, ModelFamilies.read(base.resolve("config.json")));
            CausalLM model = ModelLoader.builder().optBaseRewrite(start).build().load(base, m);
            LoraAdapters.load(adapterDir, model, m, start);
            return model.forward(m.create(new long[] {1, 9, 13, 14, 15, 2}, new Shape(1, 6)), null).toFloatArray();
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"use_dora=true", "loraplus_lr_ratio=16", "pissa_init=true", "loftq_init=true"})
    void loraOnlyKeysAreRefusedForFullFinetuningInOneLine(String key) {
        List<String> keys = List.of("model_name_or_path=" + base, "dataset=" + dataset, "output_dir=" + dir.resolve("full"),
                "finetuning_type=full", key);
        ConfigException e = assertThrows(ConfigException.class, () -> train(keys));
        assertEquals(key.substring(0, key.indexOf('=')) + ": is only valid for LoRA training (finetuning_type: lora)",
                e.getMessage());
    }

    @Test
    void anAdapterSavedWithoutAModuleItsTargetsSelectIsScoredAsPeftLoadsItButNotTrainedOn() throws Exception {
        Path partial = dir.resolve("partial");
        assertTrue(train(job(partial, "max_steps=2")).completed());
        Path text = Files.writeString(dir.resolve("eval.txt"), "reverse a b c : c b a\n");
        Poison.withoutTensors(partial.resolve("adapter_model.safetensors"), "adapter_model", "layers.0.mlp.down_proj.");
        // PEFT adds the module with B = 0 and warns: the base's output there, as without the module; so eval scores it
        double scored = evalLoss("adapter_name_or_path=" + partial, "dataset=" + text);
        assertTrue(Double.isFinite(scored), "eval loss " + scored);
        ConfigException e = assertThrows(ConfigException.class,
                () -> train(job(dir.resolve("on"), "adapter_name_or_path=" + partial)));
        assertEquals("adapter_name_or_path: " + partial + " holds no tensors for 1 of the modules its target_modules"
                + " selects, such as 'model.layers.0.mlp.down_proj'; PEFT would train them on from a fresh start, which"
                + " qlora4j does not: save the adapter whole (eval, generate and export load it as PEFT does)",
                e.getMessage());
    }

    @Test
    void continuingAnAdapterOfAnotherVariantIsRefusedNamingTheFlag() throws Exception {
        Path dora = dir.resolve("dora");
        assertTrue(train(job(dora, "use_dora=true", "max_steps=1")).completed());
        ConfigException e = assertThrows(ConfigException.class,
                () -> train(job(dir.resolve("plain"), "adapter_name_or_path=" + dora)));
        assertTrue(e.getMessage().startsWith("use_dora: the job trains LoRA but the adapter in " + dora + " is DoRA"),
                e.getMessage());
    }
}
