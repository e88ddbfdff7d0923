package io.qlora4j.trainer;

import ai.djl.Device;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.adapters.InitialAdapter;
import io.qlora4j.data.DataException;
import io.qlora4j.data.DataLog;
import io.qlora4j.data.DataPipeline;
import io.qlora4j.data.Example;
import io.qlora4j.data.TemplateTokenizer;
import io.qlora4j.model.ComputeTarget;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.TokenizerFile;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import io.qlora4j.trainer.plan.PlanReport;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.function.Consumer;

/**
 * A training job from its {@link JobConfig} to its output: the base model (4-bit for QLoRA, dense for
 * {@code finetuning_type: full}), the data, the trainable weights (new or from a checkpoint), then the
 * loop. With {@code eval_dataset} the model is scored on that held-out set before and after training and
 * the two are printed side by side. This is what {@code qlora4j train} runs.
 */
public final class Trainer {
    /** Keys that choose how LoRA adapters train, refused with {@code finetuning_type: full} as LLaMA-Factory does. */
    private static final List<String> LORA_ONLY = List.of("use_dora", "loraplus_lr_ratio", "pissa_init", "pissa_convert",
            "loftq_init");

    private Trainer() {}

    /**
     * Runs the job, reporting to {@code out} ({@code terminal}: a redrawn progress bar instead of log lines).
     * A run that stops at a non-finite loss returns a result carrying the reason.
     *
     * @throws ConfigException for a job the trainer cannot run (bad combination, non-empty output_dir, ...)
     * @throws ModelException for a model directory that cannot be loaded
     * @throws DataException for a dataset that cannot be read
     */
    public static TrainingResult train(JobConfig config, PrintWriter out, boolean terminal)
            throws ConfigException, ModelException, DataException, IOException {
        return train(config, out, terminal, DataLog.to(out, false));
    }

    /**
     * {@link #train(JobConfig, PrintWriter, boolean)} with the data pipeline reporting to {@code dataLog} (the
     * template chosen, kept and skipped records by reason, and as detail the first skipped records).
     */
    public static TrainingResult train(JobConfig config, PrintWriter out, boolean terminal, DataLog dataLog)
            throws ConfigException, ModelException, DataException, IOException {
        ComputeTarget target = JobModels.target(config, line -> out.println("warning: " + line));
        return train(config, out, terminal, target.device(), target.dataType(), dataLog);
    }

    /**
     * {@link #train(JobConfig, PrintWriter, boolean)} on an explicit device and compute dtype, float16 on a CPU
     * included (which {@link ComputeTarget} does not offer users): how tests reach the float16 path.
     */
    static TrainingResult train(JobConfig config, PrintWriter out, boolean terminal, Device device,
            DataType computeType) throws ConfigException, ModelException, DataException, IOException {
        return train(config, out, terminal, device, computeType, DataLog.to(out, false));
    }

    private static TrainingResult train(JobConfig config, PrintWriter out, boolean terminal, Device device,
            DataType computeType, DataLog dataLog) throws ConfigException, ModelException, DataException, IOException {
        boolean full = config.string("finetuning_type").equals("full");
        checkSupported(config, full);
        JobModels.format(config); // an unimplemented method or bit width is refused before anything is written
        Path baseDir = Path.of(config.require("model_name_or_path"));
        Path outputDir = Path.of(config.require("output_dir"));
        String resume = config.string("resume_from_checkpoint");
        boolean resuming = resume != null && !resume.equalsIgnoreCase("false");
        if (full && computeType != DataType.FLOAT32) {
            throw new ConfigException("fp16: finetuning_type full trains float32 weights; leave fp16 unset or use "
                    + "finetuning_type: lora");
        }
        Consumer<String> warn = line -> out.println("warning: " + line);
        try (RunDirectory dir = RunDirectory.open(outputDir, config.bool("overwrite_output_dir"), resuming);
                NDManager manager = NDManager.newBaseManager(device, "PyTorch")) {
            Path checkpoint = resuming ? dir.resumeSource(resume) : null;
            TokenizerFile tokenizerFile = TokenizerFile.read(baseDir); // checked before native code reads it
            try (TemplateTokenizer tokenizer = TemplateTokenizer.open(baseDir)) {
                DataPipeline data = DataPipeline.load(JobData.settings(config), tokenizer, dataLog);
                JobData.check(config, data, warn);
                warnIfTooLarge(config, out);
                InitialAdapter start = full ? null : LoraWeights.start(config, baseDir, checkpoint);
                CausalLM model = JobModels.loader(config, computeType, start, warn)
                        .load(full && checkpoint != null ? checkpoint : baseDir, manager);
                if (start != null) {
                    out.println("base rewritten by " + start.init().describe());
                    start.report().lines().forEach(out::println);
                    if (start.init().rerunsDiffer() && !config.bool("pissa_convert")) {
                        warn.accept("PEFT re-runs PiSSA's randomised SVD with its own random sketch when it loads this"
                                + " adapter, so there it is another model; pissa_convert: true also writes an adapter"
                                + " over the original base that PEFT loads exactly (or pissa_iter: -1, the exact SVD)");
                    }
                }
                tokenizerFile.checkIdsBelow(model.config().vocabSize(), baseDir.resolve("config.json"));
                JobModels.warnPastPositions(config, model.config().maxPositionEmbeddings(), baseDir.resolve("config.json"),
                        data.train().stream().mapToInt(Example::length).max().orElse(0), warn);
                TrainableWeights weights = full ? new FullWeights(model, baseDir)
                        : LoraWeights.create(config, model, manager, checkpoint, start);
                HeldOutEval heldOut = HeldOutEval.load(config, tokenizer);
                EvalReport before = heldOut == null ? null : evaluate(heldOut, model, weights, out);
                dir.beginWriting();
                TrainingResult result = new TrainingLoop(config, model, weights, data, dir, checkpoint, out, terminal)
                        .run();
                if (heldOut != null && result.completed()) {
                    EvalReport after = evaluate(heldOut, model, weights, out);
                    EvalReport.printComparison(out, heldOut.name(), checkpoint != null ? "at resume" : "base", before,
                            full ? "trained" : "base + adapter", after);
                }
                return result;
            }
        }
    }

    /**
     * Plans the run's memory before the model is loaded ({@link JobPlan}: the plan {@code inspect} prints for the same
     * keys) and prints the verdict in one line, with a warning and the settings that would fit when it exceeds the
     * device (or the machine).
     */
    private static void warnIfTooLarge(JobConfig config, PrintWriter out) throws ConfigException, ModelException {
        PlanReport report = JobPlan.of(config).report();
        out.println("memory plan: " + report.verdict());
        if (!report.plan().fits()) {
            out.println("warning: this run is planned to exceed the memory it has (qlora4j inspect shows the parts)"
                    + (report.advice().isEmpty() ? "" : "; any one of these would fit: "
                            + String.join("; ", report.advice())));
        }
        out.flush();
    }

    /** Scores the model with LoRA dropout off, announcing it first (generation takes a while). */
    private static EvalReport evaluate(HeldOutEval heldOut, CausalLM model, TrainableWeights weights,
            PrintWriter out) {
        out.println("evaluating on " + heldOut.name() + " ...");
        out.flush();
        weights.setTraining(false);
        return heldOut.run(model);
    }

    private static void checkSupported(JobConfig config, boolean full) throws ConfigException {
        if (!config.bool("do_train")) {
            throw new ConfigException("do_train: false leaves train nothing to do; to score a model (and adapter) on"
                    + " held-out texts run qlora4j eval");
        }
        if (full) {
            for (String key : LORA_ONLY) {
                if (config.isSet(key) && !Boolean.FALSE.equals(config.explicitValues().get(key))) {
                    throw new ConfigException(key + ": is only valid for LoRA training (finetuning_type: lora)");
                }
            }
        }
        StepIntervals.check(config);
        TrainingLoop.schedule(config, Integer.MAX_VALUE / 2); // its settings, before anything is written
        if (full && config.integer("quantization_bit") != null) {
            throw new ConfigException("finetuning_type: full trains every weight in float32 and cannot use "
                    + "quantization_bit; remove it or use finetuning_type: lora");
        }
    }
}
