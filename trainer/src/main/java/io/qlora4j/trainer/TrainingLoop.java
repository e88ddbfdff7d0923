package io.qlora4j.trainer;

import ai.djl.ndarray.types.DataType;
import io.qlora4j.data.Batch;
import io.qlora4j.data.BatchIterator;
import io.qlora4j.data.DataException;
import io.qlora4j.data.DataPipeline;
import io.qlora4j.data.DataPosition;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.checkpoint.AtomicFiles;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.optim.AdamW;
import io.qlora4j.optim.Gradients;
import io.qlora4j.optim.HostPages;
import io.qlora4j.optim.LossScaler;
import io.qlora4j.optim.LrSchedule;
import io.qlora4j.optim.LrSchedules;
import io.qlora4j.optim.Optim;
import io.qlora4j.optim.PagingStats;
import io.qlora4j.optim.Parameter;
import io.qlora4j.optim.ScheduleSettingException;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import io.qlora4j.trainer.plan.MemoryPlanner;
import io.qlora4j.trainer.plan.ProcessOverhead;
import io.qlora4j.trainer.plan.RecomputePolicy;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Optional;

/**
 * The optimizer loop of one run: micro-batches grouped by {@code gradient_accumulation_steps} within an epoch (its
 * last group may be smaller), the step, global-norm clipping ({@code max_grad_norm}), AdamW ({@code optim}) at the
 * scheduled rate, zeroed gradients; logs every {@code logging_steps}, checkpoints every {@code save_steps} (weights
 * only with {@code save_only_model}), the final output at the end. Everything a step depends on is a function of the
 * job, the step number and the saved state, so a run resumed from a checkpoint ends bit-identical to one that never
 * stopped.
 */
final class TrainingLoop {
    private final JobConfig config;
    private final CausalLM model;
    private final TrainableWeights weights;
    private final DataPipeline data;
    private final RunDirectory dir;
    private final Path resumedFrom;
    private final PrintWriter out;
    private final boolean terminal;

    /**
     * A run of {@code weights} on {@code model} over {@code data} into {@code dir}, continuing from the
     * checkpoint {@code resumedFrom} (null: from the start), reporting to {@code out} ({@code terminal}: as
     * a redrawn progress bar).
     */
    TrainingLoop(JobConfig config, CausalLM model, TrainableWeights weights, DataPipeline data, RunDirectory dir,
            Path resumedFrom, PrintWriter out, boolean terminal) {
        this.config = config;
        this.model = model;
        this.weights = weights;
        this.data = data;
        this.dir = dir;
        this.resumedFrom = resumedFrom;
        this.out = out;
        this.terminal = terminal;
    }

    /** float16 training's loss scaler, resumed from the checkpoint's state when there is one; null in float32. */
    private LossScaler lossScaler(TrainerState resumed) {
        if (model.computeType() != DataType.FLOAT16) {
            return null;
        }
        return resumed == null || resumed.lossScale() == null ? new LossScaler()
                : new LossScaler(resumed.lossScale(), resumed.lossScaleGoodSteps());
    }

    /** Trains to the last step, or stops at a non-finite loss or gradient norm with the reason in the result. */
    TrainingResult run() throws ConfigException, DataException, IOException, ModelException {
        TrainerState resumed = resumedFrom == null ? null : TrainerState.read(resumedFrom);
        long seed = config.integer("seed");
        if (resumed != null && resumed.seed() != seed) {
            throw new ConfigException("seed: the checkpoint " + resumedFrom + " was trained with seed " + resumed.seed()
                    + ", the job says " + seed + "; resume with the same seed");
        }
        long dataSeed = JobData.dataSeed(config);
        if (resumed != null && resumed.dataPosition().seed() != dataSeed) {
            throw new ConfigException("data_seed: the checkpoint " + resumedFrom + " drew its data order with seed "
                    + resumed.dataPosition().seed() + ", the job says " + dataSeed + "; resume with the same order");
        }
        int batchSize = config.integer("per_device_train_batch_size");
        if (resumed != null && resumed.trainBatchSize() != null && resumed.trainBatchSize() != batchSize) {
            // its data position counts micro-batches of the checkpoint's size (transformers warns and goes on)
            throw new ConfigException("per_device_train_batch_size: the checkpoint " + resumedFrom + " was trained"
                    + " with batches of " + resumed.trainBatchSize() + ", the job says " + batchSize
                    + "; resume with the same batch size");
        }
        try (BatchIterator batches = batches(resumed)) {
            return train(batches, resumed, seed, dataSeed);
        }
    }

    private TrainingResult train(BatchIterator batches, TrainerState resumed, long seed, long dataSeed)
            throws ConfigException, DataException, IOException, ModelException {
        long perEpoch = batches.batchesPerEpoch();
        int accumulation = config.integer("gradient_accumulation_steps");
        int total = totalSteps(perEpoch, accumulation);
        StepIntervals every = StepIntervals.of(config, total);
        LrSchedule schedule = schedule(config, total);
        List<Parameter> params = weights.parameters();
        MemoryPlanner.Device device = JobPlan.device(config);
        RecomputePolicy recompute = JobPlan.recompute(config, model.config(), device);
        TrainStep step = TrainStep.builder(model)
                .optRecompute(recompute.recomputes())
                .optKeptProducts(recompute.kept())
                .optSkippedLayers(recompute.skippedLayers())
                .optHeldWeightBytes(JobPlan.heldWeightBytes(config))
                .optTrainEmbeddings(weights.trainsEmbeddings())
                .optDropoutSeeder(weights::setDropoutSeed)
                .optReleaseHeap(ProcessOverhead.of(device.key()).releasesHeap())
                .build();
        List<TrainerState.LogEntry> history = new ArrayList<>(resumed == null ? List.of() : resumed.logHistory());
        HeldOutEval heldOut = HeldOutEval.split(config, data);
        int globalStep = resumed == null ? 0 : resumed.globalStep();
        if (globalStep > total) {
            throw new ConfigException("max_steps: the checkpoint " + resumedFrom + " is at step " + globalStep
                    + ", past the " + total + " steps this job plans; resume with max_steps of at least " + globalStep);
        }
        Progress progress = new Progress(out, terminal, globalStep, total);
        Path lastCheckpoint = resumedFrom;
        double lastLoss = history.isEmpty() ? Double.NaN : history.get(history.size() - 1).loss();
        LossScaler scaler = lossScaler(resumed);
        TrainerState state = resumed;
        try (AdamW optimizer = optimizer()) {
            if (resumed != null) {
                optimizer.importState(OptimizerFile.read(resumedFrom));
            }
            MetricsLog metrics = new MetricsLog(dir.path(), history); // written once every input has been read
            weights.setTraining(true);
            Window window = new Window();
            if (resumed != null) {
                window.lossSum = resumed.unloggedLoss();
                window.steps = resumed.unloggedSteps();
            }
            while (globalStep < total) {
                List<Batch> group = new ArrayList<>(accumulation);
                // an epoch's last step takes the batches it has left, as transformers' does: no step spans two epochs
                do {
                    Batch batch = batches.next();
                    group.add(batch);
                    window.tokens += batch.tokens();
                } while (group.size() < accumulation && batches.position().batch() > 0);
                double loss = step.accumulate(group, seed + globalStep, accumulation,
                        scaler == null ? 1f : scaler.scale());
                // float16: an overflowed step is skipped and lowers the scale, as torch's GradScaler does
                boolean skipped = scaler != null && Double.isFinite(loss) && !scaler.unscaleAndUpdate(params);
                float norm = skipped ? 0f : Gradients.clipGlobalNorm(params, config.number("max_grad_norm"));
                if (!Double.isFinite(loss) || !Float.isFinite(norm)) {
                    return stopped(!Double.isFinite(loss) ? "loss is " + loss : "gradient norm is " + norm,
                            globalStep + 1, total, lastLoss, lastCheckpoint, progress);
                }
                double lr = schedule.lr(globalStep);
                if (skipped) {
                    progress.message(String.format(Locale.ROOT, "step %d: float16 gradients overflowed; step skipped,"
                            + " loss scale now %.0f", globalStep + 1, scaler.scale()));
                } else {
                    optimizer.step(params, lr);
                }
                Gradients.zero(params);
                globalStep++;
                CrashPoint.reach("step");
                PagingStats paging = optimizer.pagingStats();
                window.add(loss, norm, paging);
                progress.stepped(globalStep, loss, lr, window.tokensPerSecond(), paging);
                boolean epochEnd = batches.position().batch() == 0;
                if (every.logging().due(globalStep, epochEnd) || globalStep == total
                        || (globalStep == 1 && config.bool("logging_first_step"))) {
                    TrainerState.LogEntry entry = window.entry(globalStep, epochs(batches, perEpoch), lr);
                    history.add(entry);
                    metrics.append(entry);
                    progress.logged(entry);
                    lastLoss = entry.loss();
                    window = new Window();
                }
                if (heldOut != null && (every.eval().due(globalStep, epochEnd) || globalStep == total)) {
                    weights.setTraining(false);
                    double evalLoss = heldOut.run(model).loss();
                    weights.setTraining(true);
                    metrics.appendEval(globalStep, evalLoss);
                    progress.message(String.format(Locale.ROOT, "eval at step %d: loss %.4f, perplexity %.3f (%s)",
                            globalStep, evalLoss, Math.exp(evalLoss), heldOut.name()));
                }
                TrainerState current = new TrainerState(globalStep, epochs(batches, perEpoch), total, seed,
                        position(batches, dataSeed), List.copyOf(history), window.lossSum, window.steps,
                        scaler == null ? null : scaler.scale(), scaler == null ? null : scaler.goodSteps(),
                        config.integer("per_device_train_batch_size"));
                state = current;
                // the last step is always saved too (transformers' DefaultFlowCallback does the same), so that a
                // run killed while writing its final output resumes to a complete one; save_strategy: no saves
                // only that one
                if (every.save().due(globalStep, epochEnd) || globalStep == total) {
                    String bad = TrainableWeights.firstNonFinite(params);
                    if (bad != null) {
                        return stopped("weight " + bad + " is not finite after the update", globalStep, total,
                                lastLoss, lastCheckpoint, progress);
                    }
                    lastCheckpoint = dir.saveCheckpoint(globalStep, d -> {
                        weights.save(d);
                        CrashPoint.reach("checkpoint.write");
                        if (!config.bool("save_only_model")) {
                            OptimizerFile.write(d, optimizer.exportState());
                        }
                        writeRecords(d, current);
                    }, config.integer("save_total_limit"));
                    progress.message("saved " + lastCheckpoint);
                }
            }
        }
        TrainerState last = state;
        dir.prune(config.integer("save_total_limit")); // done already unless a kill interrupted it
        Optional<byte[]> plot = config.bool("plot_loss") ? LossPlot.draw(dir.path().getFileName().toString(),
                last.logHistory(), line -> out.println("warning: " + line)) : Optional.empty();
        dir.publish(d -> {
            weights.save(d);
            writeRecords(d, last);
            if (plot.isPresent()) {
                AtomicFiles.write(d.resolve(LossPlot.FILE), plot.get());
            }
        });
        progress.message(String.format(Locale.ROOT, "%s %d steps, loss %.4f; wrote %s",
                resumedFrom != null && resumed.globalStep() == total ? "training was complete at " + resumedFrom
                        + ":" : "trained", total, lastLoss, dir.path()));
        return new TrainingResult(globalStep, total, lastLoss, dir.path(), lastCheckpoint, null);
    }

    /** The result of a run stopped at {@code step} for {@code reason}, which is also reported. */
    private TrainingResult stopped(String reason, int step, int total, double lastLoss, Path lastCheckpoint,
            Progress progress) {
        String failure = String.format(Locale.ROOT, "%s at step %d (learning_rate %s); stopped without saving: %s",
                reason, step, config.number("learning_rate"), lastCheckpoint == null ? "no checkpoint was saved yet"
                        : "the last good checkpoint is " + lastCheckpoint);
        progress.message(failure);
        return new TrainingResult(step - 1, total, lastLoss, dir.path(), lastCheckpoint, failure);
    }

    private BatchIterator batches(TrainerState resumed) throws ConfigException, DataException {
        if (resumed == null) {
            return data.batches(DataPosition.START);
        }
        DataPosition start = resumed.dataPosition().toData();
        try {
            return data.batches(start);
        } catch (DataException e) {
            throw new ConfigException("resume_from_checkpoint: the data position " + start + " of " + resumedFrom
                    + " does not fit this dataset (" + e.getMessage() + "); resume with the same data");
        }
    }

    /**
     * AdamW as {@code optim} names it, with {@code paged_budget_mb} (MiB, fractions allowed) and {@code
     * paged_page_kb} for the paged ones.
     */
    private AdamW optimizer() throws ConfigException {
        Optim optim = Optim.of(config.string("optim"));
        AdamW.Builder builder = AdamW.builder()
                .optBeta1(config.number("adam_beta1"))
                .optBeta2(config.number("adam_beta2"))
                .optEpsilon(config.number("adam_epsilon"))
                .optWeightDecay(config.number("weight_decay"))
                .optOptim(optim)
                .optPageSize(config.integer("paged_page_kb") * 1024L);
        if (optim.paged()) {
            // pinned pages and side-stream copies on CUDA; on the CPU nothing of the cuda module is touched
            builder.optHostPages(HostPages.forDevice(model.manager().getDevice(), line -> out.println("warning: " + line)));
        }
        if (config.isSet("paged_budget_mb")) {
            if (!optim.paged()) {
                throw new ConfigException("paged_budget_mb: applies to paged_adamw_32bit and paged_adamw_8bit, not "
                        + optim.key());
            }
            builder.optPagedBudget((long) (config.number("paged_budget_mb") * (1 << 20)));
        }
        try {
            return builder.build();
        } catch (IllegalArgumentException e) {
            throw new ConfigException("paged_budget_mb: " + e.getMessage() + " (paged_page_kb "
                    + config.integer("paged_page_kb") + ")");
        }
    }

    /**
     * The job's learning-rate schedule over {@code total} steps: {@code lr_scheduler_type} with its
     * {@code lr_scheduler_kwargs}, after the warmup transformers 5 reads from {@code warmup_steps} or
     * {@code warmup_ratio}.
     *
     * @throws ConfigException naming the key at fault (a setting the schedule does not take, a value it refuses)
     */
    static LrSchedule schedule(JobConfig config, int total) throws ConfigException {
        Map<String, Double> settings = new LinkedHashMap<>();
        for (Map.Entry<String, Object> e : config.mapping("lr_scheduler_kwargs").entrySet()) {
            if (!(e.getValue() instanceof Number n) || !Double.isFinite(n.doubleValue())) {
                throw new ConfigException("lr_scheduler_kwargs: " + e.getKey() + ": expected a number, got "
                        + e.getValue());
            }
            settings.put(e.getKey(), n.doubleValue());
        }
        String type = config.string("lr_scheduler_type");
        try {
            return LrSchedules.create(type, config.number("learning_rate"), LrSchedules.warmupSteps(
                    config.number(config.isSet("warmup_ratio") ? "warmup_ratio" : "warmup_steps"), total), total,
                    settings);
        } catch (ScheduleSettingException e) {
            throw new ConfigException(e.getMessage());
        } catch (IllegalArgumentException e) {
            throw new ConfigException("lr_scheduler_type: " + type + ": " + e.getMessage());
        }
    }

    /**
     * {@code max_steps} when set, else transformers' {@code ceil(num_train_epochs * max(ceil(batches / accumulation),
     * 1))}: an epoch's left-over batches make one more step; a streamed dataset (epoch length unknown) needs max_steps.
     */
    private int totalSteps(long perEpoch, int accumulation) throws ConfigException {
        int maxSteps = config.integer("max_steps");
        if (maxSteps > 0) {
            return maxSteps;
        }
        if (perEpoch < 0) {
            throw new ConfigException("max_steps: a streamed dataset has no known epoch length; set max_steps");
        }
        long stepsPerEpoch = Math.max((perEpoch + accumulation - 1) / accumulation, 1);
        int total = (int) Math.ceil(config.number("num_train_epochs") * stepsPerEpoch);
        if (total <= 0) {
            throw new ConfigException("num_train_epochs: " + config.number("num_train_epochs")
                    + " gives no optimizer step; set it above 0 or set max_steps");
        }
        return total;
    }

    /** Fractional epochs done (whole epochs when streaming). */
    private static double epochs(BatchIterator batches, long perEpoch) {
        DataPosition p = batches.position();
        return perEpoch > 0 ? p.epoch() + (double) p.batch() / perEpoch : p.epoch();
    }

    private static TrainerState.Position position(BatchIterator batches, long seed) {
        DataPosition p = batches.position();
        return new TrainerState.Position(p.epoch(), p.batch(), seed);
    }

    private void writeRecords(Path d, TrainerState state) throws IOException {
        state.write(d);
        AtomicFiles.write(d.resolve(TrainingArgs.FILE), TrainingArgs.yaml(config));
    }

    /** What happened since the last log line. */
    private static final class Window {
        private final long startNanos = System.nanoTime();
        private double lossSum;
        private int steps;
        private float gradNorm;
        private long tokens;
        private long pagedBytes;
        private PagingStats paging;

        void add(double loss, float norm, PagingStats stats) {
            lossSum += loss;
            steps++;
            gradNorm = norm;
            pagedBytes += stats.pagedInBytes() + stats.pagedOutBytes();
            paging = stats;
        }

        double tokensPerSecond() {
            double seconds = (System.nanoTime() - startNanos) / 1e9;
            return seconds > 0 ? tokens / seconds : 0;
        }

        TrainerState.LogEntry entry(int step, double epoch, double lr) {
            return new TrainerState.LogEntry(step, epoch, lossSum / steps, lr, gradNorm, tokensPerSecond(),
                    paging.deviceBytes(), paging.hostBytes(), pagedBytes / steps);
        }
    }
}
