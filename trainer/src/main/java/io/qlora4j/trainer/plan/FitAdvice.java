package io.qlora4j.trainer.plan;

import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.optim.Optim;
import io.qlora4j.trainer.plan.ActivationModel.Recompute;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.function.UnaryOperator;

/**
 * The settings that would make a plan fit, each found by planning again with that one change: a smaller
 * {@code paged_budget_mb} (or a paged optimizer), fewer skipped layers, recompute on (or a selective recompute made
 * full), float16 compute on CUDA, a lower rank, a smaller
 * batch, a base format of fewer bits. Only changes whose plan fits are offered.
 */
final class FitAdvice {
    private static final long MIB = 1 << 20;

    private FitAdvice() {}

    /**
     * The job settings ({@code key=value}, with a short why) that each alone make {@code planner}'s plan fit,
     * {@code skippable} being its {@link #skippableLayers}.
     */
    static List<String> of(MemoryPlanner planner, MemoryPlan plan, Integer skippable) {
        List<String> out = new ArrayList<>();
        if (plan.fits()) {
            return out;
        }
        long deficit = -plan.marginBytes();
        MemoryPlan.Part optimizer = plan.part("optimizer_device");
        if (!plan.onCpu() && optimizer != null && optimizer.bytes() > 0) {
            long budget = (optimizer.bytes() - deficit) / MIB * MIB;
            boolean paged = planner.toBuilder().optim().paged();
            if (budget >= planner.toBuilder().pageBytes()) {
                UnaryOperator<MemoryPlanner.Builder> change = paged ? b -> b.optPagedBudget(budget)
                        : b -> b.optOptim(Optim.PAGED_ADAMW_32BIT).optPagedBudget(budget);
                offer(out, planner, change, (paged ? "" : "optim=paged_adamw_32bit ") + "paged_budget_mb="
                        + budget / MIB, "keep less optimizer state on the device, page the rest to host memory");
            }
        }
        if (skippable != null && skippable < planner.toBuilder().skippedLayers()) {
            offer(out, planner, b -> b.optSkippedLayers(skippable), "gradient_checkpointing_skip_layers=" + skippable,
                    skippable == 0 ? "recompute every layer" : "recompute more layers");
        }
        if (planner.toBuilder().recompute() == Recompute.SELECTIVE) {
            offer(out, planner, b -> b.optRecompute(Recompute.BLOCK).optKeptProducts(List.of()),
                    "gradient_checkpointing_mode=full", "recompute the kept base products too");
        } else {
            offer(out, planner, b -> b.optRecompute(Recompute.BLOCK), "gradient_checkpointing=true",
                    "recompute each block instead of keeping the whole graph");
        }
        if (!plan.onCpu()) {
            offer(out, planner, b -> b.optComputeBytes(2), "fp16=true", "float16 activations and dequantized weights");
        }
        for (int rank = planner.toBuilder().rank() / 2; rank >= 1; rank /= 2) {
            int r = rank;
            if (offer(out, planner, b -> b.optRank(r), "lora_rank=" + r, "fewer adapter parameters")) {
                break;
            }
        }
        long batch = planner.toBuilder().batch();
        for (long b2 = batch / 2; b2 >= 1; b2 /= 2) {
            long next = b2;
            if (offer(out, planner, b -> b.optBatch(next), "per_device_train_batch_size=" + next,
                    String.format(Locale.ROOT, "with gradient_accumulation_steps x %d for the same effective batch",
                            batch / next))) {
                break;
            }
        }
        double bits = planner.format().bitsPerParameter(new long[] {4096, 4096});
        for (BaseFormat f : BaseFormats.menu()) {
            if (f.bitsPerParameter(new long[] {4096, 4096}) < bits
                    && offer(out, planner, b -> b.optFormat(f), keys(f), "a base of fewer bits: " + f.describe())) {
                break;
            }
        }
        return out;
    }

    /**
     * The most top layers {@code planner}'s recompute (the full one for a job without) could leave out of it and still
     * fit; null when no limit is known or not even recomputing every layer fits. The plan grows with every layer
     * skipped, so it is the first that fits counting down from all of them.
     */
    static Integer skippableLayers(MemoryPlanner planner) {
        if (planner.plan().limitBytes() == null) {
            return null;
        }
        MemoryPlanner.Builder b = recomputing(planner);
        for (int layers = b.shape().layers(); layers >= 0; layers--) {
            if (b.optSkippedLayers(layers).build().plan().fits()) {
                return layers;
            }
        }
        return null;
    }

    /**
     * {@code planner}'s settings under its own recompute, or the full one for a job without: the recompute that
     * skipped layers are left out of.
     */
    static MemoryPlanner.Builder recomputing(MemoryPlanner planner) {
        MemoryPlanner.Builder b = planner.toBuilder();
        return b.recompute() == Recompute.NONE ? b.optRecompute(Recompute.BLOCK) : b;
    }

    private static String keys(BaseFormat f) {
        StringBuilder s = new StringBuilder();
        f.keys().forEach((k, v) -> s.append(s.length() == 0 ? "" : " ").append(k).append('=').append(v));
        return s.toString();
    }

    /** Adds {@code setting} when the plan with {@code change} fits; says whether it did. */
    private static boolean offer(List<String> out, MemoryPlanner planner, UnaryOperator<MemoryPlanner.Builder> change,
            String setting, String why) {
        MemoryPlan changed;
        try {
            changed = change.apply(planner.toBuilder()).build().plan();
        } catch (ArithmeticException e) {
            return false;
        }
        if (!changed.fits()) {
            return false;
        }
        out.add(String.format(Locale.ROOT, "%s (%s): margin %.2f GB", setting, why, changed.marginBytes() / 1e9));
        return true;
    }
}
