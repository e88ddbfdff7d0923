package io.qlora4j.trainer;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.util.cuda.CudaUtils;
import io.qlora4j.adapters.LoraSettings;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.optim.Optim;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import io.qlora4j.trainer.plan.ActivationModel.Recompute;
import io.qlora4j.trainer.plan.MemoryPlanner;
import io.qlora4j.trainer.plan.ModelShape;
import io.qlora4j.trainer.plan.PlanReport;
import java.lang.management.ManagementFactory;
import java.util.List;
import java.util.Locale;

/**
 * A job's keys as a {@link MemoryPlanner}: the one translation that {@code inspect} and {@code train} share, so
 * that the plan printed and the plan checked at the start of a run are the same.
 */
public final class JobPlan {
    private static final double GB = 1e9;

    private JobPlan() {}

    /**
     * The planner for {@code config} over a model of {@code model}'s config whose projections end up in {@code format}, on
     * {@code device}, against the memory {@link #limit} finds.
     *
     * @throws ConfigException for adapter settings the run would refuse
     */
    public static MemoryPlanner planner(JobConfig config, DecoderConfig model, BaseFormat format,
            MemoryPlanner.Device device) throws ConfigException {
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
        return MemoryPlanner.builder(ModelShape.of(model))
                .optFormat(format)
                .optFullFinetune(full)
                .optRank(lora.rank())
                .optTargets(targets)
                .optVariant(lora.variant())
                .optDropout(lora.dropout() > 0)
                .optOptim(Optim.of(config.string("optim")))
                .optPageBytes(pageBytes(config))
                .optPagedBudget(budgetMb == null ? null : Math.max(pageBytes(config), (long) (budgetMb * (1 << 20))))
                .optRecompute(recomputes(config) ? Recompute.BLOCK : Recompute.NONE)
                .optBatch(config.integer("per_device_train_batch_size"))
                .optSeq(config.integer("cutoff_len"))
                .optComputeBytes(device == MemoryPlanner.Device.CUDA && config.bool("fp16") ? 2 : 4)
                .optDevice(device)
                .optLimit(limit == null ? null : limit[0], limit == null ? null : limitSource(config, device))
                .build();
    }

    /**
     * Whether the backward pass recomputes each block: {@code gradient_checkpointing} on and
     * {@code disable_gradient_checkpointing} off, as LLaMA-Factory reads them.
     */
    public static boolean recomputes(JobConfig config) {
        return config.bool("gradient_checkpointing") && !config.bool("disable_gradient_checkpointing");
    }

    /**
     * {@code planner}'s plan with the settings that would make it fit.
     *
     * @throws ConfigException when a figure passes 2^63 bytes (a batch no machine can hold)
     */
    public static PlanReport report(JobConfig config, MemoryPlanner planner) throws ConfigException {
        try {
            return PlanReport.of(planner);
        } catch (ArithmeticException e) {
            throw new ConfigException("per_device_train_batch_size x cutoff_len: a batch of "
                    + config.integer("per_device_train_batch_size") + " x " + config.integer("cutoff_len")
                    + " tokens needs more than 2^63 bytes; nothing can run it");
        }
    }

    /** The size of one page of paged optimizer state ({@code paged_page_kb}). */
    private static long pageBytes(JobConfig config) {
        return config.integer("paged_page_kb") * 1024L;
    }

    /**
     * The machine kind a job computes on: {@code device: cpu} or {@code cuda} as written (a plan for a GPU needs no
     * GPU), {@code auto} the engine's choice.
     */
    public static MemoryPlanner.Device device(JobConfig config) {
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
        return new long[] {((com.sun.management.OperatingSystemMXBean) ManagementFactory.getOperatingSystemMXBean())
                .getTotalMemorySize()};
    }

    private static String limitSource(JobConfig config, MemoryPlanner.Device device) {
        if (config.number("device_memory_gb") != null) {
            return "device_memory_gb " + config.number("device_memory_gb");
        }
        return device == MemoryPlanner.Device.CUDA ? "the GPU's memory" : "the machine's physical memory";
    }
}
