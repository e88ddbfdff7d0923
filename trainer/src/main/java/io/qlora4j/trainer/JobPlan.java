package io.qlora4j.trainer;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.util.cuda.CudaUtils;
import io.qlora4j.adapters.LoraSettings;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.optim.Optim;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import io.qlora4j.trainer.plan.ActivationModel;
import io.qlora4j.trainer.plan.MemoryPlanner;
import io.qlora4j.trainer.plan.ModelShape;
import io.qlora4j.trainer.plan.PlanReport;
import io.qlora4j.trainer.plan.RecomputePolicy;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.function.UnaryOperator;

/**
 * A job's memory plan: the one place that resolves every input of the {@link MemoryPlanner} from the job's keys and
 * its model's config.json, so that the plan {@code inspect} prints and the plan {@code train} checks at its start are
 * the same plan. Resolved here and nowhere else: the model's shape (config.json), the base format (the job's
 * {@code quantization_*} keys, or the checkpoint's {@code quantization_config}), the row length ({@code cutoff_len},
 * one less with {@code packing} set, as the data pipeline builds rows: packed rows are that long, unpacked ones are
 * padded to their batch's longest and reach it at most), the batch, the adapter's rank, targets, variant and dropout,
 * the optimizer and its paging, the recompute policy, the machine kind ({@code device}, {@code use_cpu}) and compute
 * dtype (float16 only for {@code fp16} on CUDA, as {@code ComputeTarget} decides), and the memory to fit.
 *
 * @param modelDir the directory holding the model's config.json
 * @param model the model's config
 * @param format the format its projections are in during the run
 * @param planner the planner with every input set
 */
public record JobPlan(Path modelDir, DecoderConfig model, BaseFormat format, MemoryPlanner planner) {
    private static final double GB = 1e9;

    /**
     * The plan of {@code config}'s run: its model ({@code model_name_or_path}, a directory or its config.json; only
     * config.json is read) and every other input from the job's keys.
     *
     * @throws ConfigException for a model path without config.json, or adapter settings the run would refuse
     * @throws ModelException for a config.json or base format qlora4j cannot use
     */
    public static JobPlan of(JobConfig config) throws ConfigException, ModelException {
        Path path = Path.of(config.require("model_name_or_path"));
        Path dir = Files.isDirectory(path) ? path : path.toAbsolutePath().getParent();
        if (dir == null || !Files.isRegularFile(dir.resolve("config.json"))) {
            throw new ConfigException("model_name_or_path: " + path + " holds no config.json");
        }
        DecoderConfig model = ModelFamilies.read(dir.resolve("config.json"));
        BaseFormat format = BaseFormats.forModel(dir, JobModels.format(config));
        return new JobPlan(dir, model, format, planner(config, model, format));
    }

    /**
     * The plan with the settings that would make it fit.
     *
     * @throws ConfigException when a figure passes 2^63 bytes (a batch no machine can hold)
     */
    public PlanReport report() throws ConfigException {
        return report(planner);
    }

    /** {@link #report} of this plan with {@code change} applied to its planner (another base format, say). */
    public PlanReport report(UnaryOperator<MemoryPlanner.Builder> change) throws ConfigException {
        return report(change.apply(planner.toBuilder()).build());
    }

    private static PlanReport report(MemoryPlanner planner) throws ConfigException {
        try {
            return PlanReport.of(planner);
        } catch (ArithmeticException e) {
            throw new ConfigException("per_device_train_batch_size x cutoff_len: a batch of " + planner.batch() + " x "
                    + planner.seq() + " tokens needs more than 2^63 bytes; nothing can run it");
        }
    }

    private static MemoryPlanner planner(JobConfig config, DecoderConfig model, BaseFormat format)
            throws ConfigException {
        MemoryPlanner.Device device = device(config);
        boolean full = config.string("finetuning_type").equals("full");
        LoraSettings lora = LoraWeights.settings(config);
        List<String> targets;
        try {
            targets = lora.linearNames(model);
        } catch (IllegalArgumentException e) {
            throw new ConfigException(e.getMessage());
        }
        Double budgetMb = config.number("paged_budget_mb");
        long[] limit = limit(config, device);
        RecomputePolicy policy = recompute(config, model, device);
        return MemoryPlanner.builder(ModelShape.of(model))
                .optFormat(format)
                .optFullFinetune(full)
                .optRank(lora.rank())
                .optTargets(targets)
                .optVariant(lora.variant())
                .optDropout(lora.dropout() > 0)
                .optOptim(Optim.of(config.string("optim")))
                .optPageBytes(pageBytes(config))
                .optPagedBudget(budgetMb == null ? null : (long) (budgetMb * (1 << 20)))
                .optRecompute(policy.mode())
                .optKeptProducts(policy.kept())
                .optSkippedLayers(policy.skippedLayers())
                .optHeldWeights(heldWeightBytes(config))
                .optBatch(config.integer("per_device_train_batch_size"))
                .optSeq(JobData.rowTokens(config))
                .optComputeBytes(device == MemoryPlanner.Device.CUDA && config.bool("fp16") ? 2 : 4)
                .optDevice(device)
                .optLimit(limit == null ? null : limit[0], limit == null ? null : limitSource(config, device))
                .build();
    }

    /** {@code held_weights_mb} in bytes: the budget of the top blocks' weights dequantized once per step. */
    public static long heldWeightBytes(JobConfig config) {
        return (long) (config.number("held_weights_mb") * (1 << 20));
    }

    /**
     * What the backward pass recomputes on {@code device}: nothing unless {@code gradient_checkpointing} is on and
     * {@code disable_gradient_checkpointing} off (as LLaMA-Factory reads them); then every block
     * ({@code gradient_checkpointing_mode: full}) or every block but the base products that fit
     * {@code gradient_checkpointing_budget_mb} for a micro-batch of {@code per_device_train_batch_size} rows of
     * {@link JobData#rowTokens} tokens, as planned ({@code selective}; {@link ActivationModel#keptWithin}). Full fine-tuning recomputes every block: its
     * weights train, so no product can stand in for them. Either recompute leaves out the top
     * {@code gradient_checkpointing_skip_layers} layers.
     *
     * @throws ConfigException when the selective keys contradict the others
     */
    public static RecomputePolicy recompute(JobConfig config, DecoderConfig model, MemoryPlanner.Device device)
            throws ConfigException {
        boolean on = config.bool("gradient_checkpointing") && !config.bool("disable_gradient_checkpointing");
        boolean selective = config.string("gradient_checkpointing_mode").equals("selective");
        boolean full = config.string("finetuning_type").equals("full");
        Double budgetMb = config.number("gradient_checkpointing_budget_mb");
        if (config.isSet("gradient_checkpointing_mode") && selective && !on) {
            throw new ConfigException("gradient_checkpointing_mode: selective needs gradient checkpointing on"
                    + " (gradient_checkpointing: true, disable_gradient_checkpointing: false)");
        }
        if (config.isSet("gradient_checkpointing_mode") && selective && full) {
            throw new ConfigException("gradient_checkpointing_mode: selective keeps products of frozen base weights;"
                    + " finetuning_type: full trains them (use gradient_checkpointing_mode: full)");
        }
        if (budgetMb != null && !(on && selective && !full)) {
            throw new ConfigException("gradient_checkpointing_budget_mb applies to gradient_checkpointing_mode:"
                    + " selective only, which this job does not run");
        }
        int skipped = config.integer("gradient_checkpointing_skip_layers");
        if (skipped > 0 && !on) {
            throw new ConfigException("gradient_checkpointing_skip_layers applies to gradient checkpointing on"
                    + " (gradient_checkpointing: true, disable_gradient_checkpointing: false); without it no layer is"
                    + " recomputed");
        }
        if (!on) {
            return RecomputePolicy.NONE;
        }
        if (!selective || full) {
            return RecomputePolicy.BLOCK.skipping(skipped);
        }
        int computeBytes = device == MemoryPlanner.Device.CUDA && config.bool("fp16") ? 2 : 4;
        ActivationModel activations = new ActivationModel(ModelShape.of(model), computeBytes, 0, false, 0);
        return RecomputePolicy.selective(activations.keptWithin(budgetMb == null ? null : (long) (budgetMb * (1 << 20)),
                config.integer("per_device_train_batch_size"), JobData.rowTokens(config))).skipping(skipped);
    }

    /** The size of one page of paged optimizer state ({@code paged_page_kb}). */
    private static long pageBytes(JobConfig config) {
        return config.integer("paged_page_kb") * 1024L;
    }

    /**
     * The machine kind a job computes on, by {@code ComputeTarget}'s rule: {@code use_cpu} or {@code no_cuda} the
     * CPU, {@code device: cpu} or {@code cuda} as written (a plan for a GPU needs no GPU), {@code auto} the engine's
     * choice.
     */
    public static MemoryPlanner.Device device(JobConfig config) {
        if (config.bool("use_cpu") || config.bool("no_cuda")) {
            return MemoryPlanner.Device.CPU;
        }
        return switch (config.string("device").toLowerCase(Locale.ROOT)) {
            case "cuda", "gpu" -> MemoryPlanner.Device.CUDA;
            case "cpu" -> MemoryPlanner.Device.CPU;
            default -> Engine.getEngine("PyTorch").getGpuCount() > 0 ? MemoryPlanner.Device.CUDA
                    : MemoryPlanner.Device.CPU;
        };
    }

    /**
     * The memory the plan must fit: {@code device_memory_gb} when set; else on CUDA the GPU's total memory when one
     * is present, on a CPU the machine's physical memory; null when nothing says.
     */
    private static long[] limit(JobConfig config, MemoryPlanner.Device device) {
        Double gb = config.number("device_memory_gb");
        if (gb != null) {
            return new long[] {(long) (gb * GB)};
        }
        if (device == MemoryPlanner.Device.CUDA) {
            return Engine.getEngine("PyTorch").getGpuCount() > 0
                    ? new long[] {CudaUtils.getGpuMemory(Device.gpu()).getMax()} : null;
        }
        return new long[] {machineMemory()};
    }

    /** The machine's physical memory (its container's limit inside one): what a plan on the CPU must fit. */
    public static long machineMemory() {
        return ((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getTotalMemorySize();
    }

    private static String limitSource(JobConfig config, MemoryPlanner.Device device) {
        if (config.number("device_memory_gb") != null) {
            return "device_memory_gb " + config.number("device_memory_gb");
        }
        return device == MemoryPlanner.Device.CUDA ? "the GPU's memory" : "the machine's physical memory";
    }
}
