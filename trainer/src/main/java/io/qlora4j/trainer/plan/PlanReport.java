package io.qlora4j.trainer.plan;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.trainer.plan.ActivationModel.Recompute;
import java.io.PrintWriter;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * A plan as people and programs read it: one line per part, the two totals, the verdict (fits with a margin, or
 * the single settings that would make it fit), what the same run costs under each recompute policy, and for
 * {@code --json} one JSON line with every figure.
 *
 * @param plan the plan
 * @param advice settings that each alone would make it fit (empty when it fits)
 * @param policies the plan's limited total ({@link MemoryPlan#limitedBytes}) under each recompute policy, by the
 *     setting that chooses it, with everything else as planned
 * @param skippableLayers the most top layers the job's recompute (the full one for a job without) could leave out
 *     and still fit ({@code gradient_checkpointing_skip_layers}), or null when no limit is known or nothing fits
 */
public record PlanReport(MemoryPlan plan, List<String> advice, Map<String, Long> policies, Integer skippableLayers) {
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Copies the policies. */
    public PlanReport {
        policies = Collections.unmodifiableMap(new LinkedHashMap<>(policies));
    }

    /** The report of {@code planner}'s plan, with advice when it does not fit. */
    public static PlanReport of(MemoryPlanner planner) {
        MemoryPlan plan = planner.plan();
        Integer skippable = FitAdvice.skippableLayers(planner);
        return new PlanReport(plan, FitAdvice.of(planner, plan, skippable), policies(planner), skippable);
    }

    /**
     * The limited total under no recompute, the full one and, unless every weight trains, the selective one (keeping
     * the products the plan keeps, or every product when it keeps none), each recomputing every layer; then the job's
     * recompute (full without one) skipping its layers, or one layer when it skips none: what skipping costs.
     */
    private static Map<String, Long> policies(MemoryPlanner planner) {
        MemoryPlanner.Builder b = planner.toBuilder();
        List<String> kept = b.recompute() == Recompute.SELECTIVE ? b.kept()
                : b.shape().linears().stream().map(ModelShape.Linear::name).toList();
        Map<String, Long> out = new LinkedHashMap<>();
        out.put("gradient_checkpointing=false", planner.toBuilder().optRecompute(Recompute.NONE)
                .optKeptProducts(List.of()).optSkippedLayers(0).build().plan().limitedBytes());
        out.put("gradient_checkpointing_mode=full", planner.toBuilder().optRecompute(Recompute.BLOCK)
                .optKeptProducts(List.of()).optSkippedLayers(0).build().plan().limitedBytes());
        if (!b.fullFinetune()) {
            out.put("gradient_checkpointing_mode=selective", planner.toBuilder().optRecompute(Recompute.SELECTIVE)
                    .optKeptProducts(kept).optSkippedLayers(0).build().plan().limitedBytes());
        }
        int skipped = Math.max(1, b.skippedLayers());
        String setting = switch (b.recompute()) {
            case NONE -> "gradient_checkpointing=true ";
            case BLOCK -> "";
            case SELECTIVE -> "gradient_checkpointing_mode=selective ";
        };
        out.put(setting + "gradient_checkpointing_skip_layers=" + skipped,
                FitAdvice.recomputing(planner).optSkippedLayers(skipped).build().plan().limitedBytes());
        return out;
    }

    /** One line: fits with its margin, does not fit by how much, or no limit known. */
    public String verdict() {
        String what = plan.onCpu() ? "process memory" : "device memory";
        if (plan.limitBytes() == null) {
            return String.format(Locale.ROOT, "%s %s; no limit known (set device_memory_gb)", what,
                    gb(plan.limitedBytes()));
        }
        String limit = gb(plan.limitBytes()) + " (" + plan.limitSource() + ")";
        return plan.fits()
                ? String.format(Locale.ROOT, "fits: %s %s of %s, margin %s", what, gb(plan.limitedBytes()), limit,
                        gb(plan.marginBytes()))
                : String.format(Locale.ROOT, "does not fit: %s %s of %s, %s over", what, gb(plan.limitedBytes()),
                        limit, gb(-plan.marginBytes()));
    }

    /** The parts, totals and verdict, with the settings that would make it fit. */
    public void print(PrintWriter out) {
        out.printf(Locale.ROOT, "memory plan on %s:%n", plan.device());
        for (MemoryPlan.Part p : plan.parts()) {
            out.printf(Locale.ROOT, "  %-6s %-22s %10s  %s%n", plan.onCpu() ? "host" : p.place().key(), p.key(),
                    gb(p.bytes()), p.detail());
        }
        if (plan.onCpu()) {
            out.printf(Locale.ROOT, "  host total (the process's peak) %s%n", gb(plan.hostBytes()));
        } else {
            out.printf(Locale.ROOT, "  device total %s; host total %s%n", gb(plan.deviceBytes()), gb(plan.hostBytes()));
        }
        out.println(verdict());
        StringBuilder line = new StringBuilder("by recompute policy:");
        policies.forEach((setting, bytes) -> line.append(' ').append(setting).append(' ').append(gb(bytes)).append(';'));
        out.println(line.substring(0, line.length() - 1));
        if (skippableLayers != null) {
            out.printf(Locale.ROOT, "top layers the recompute could skip and still fit: %d"
                    + " (gradient_checkpointing_skip_layers)%n", skippableLayers);
        }
        if (!plan.fits()) {
            out.println(advice.isEmpty() ? "no single setting makes it fit; combine them or use a larger device"
                    : "any one of these makes it fit:");
            advice.forEach(a -> out.println("  " + a));
        }
    }

    /** Every figure as one JSON object: totals, limit, verdict, parts and advice. */
    public String json() {
        ObjectNode root = JSON.createObjectNode();
        root.put("device", plan.device());
        root.put("device_bytes", plan.deviceBytes());
        root.put("host_bytes", plan.hostBytes());
        if (plan.limitBytes() != null) {
            root.put("limit_bytes", plan.limitBytes());
            root.put("limit_source", plan.limitSource());
            root.put("margin_bytes", plan.marginBytes());
        }
        root.put("fits", plan.fits());
        ObjectNode parts = root.putObject("parts");
        for (MemoryPlan.Part p : plan.parts()) {
            ObjectNode part = parts.putObject(p.key());
            part.put("bytes", p.bytes());
            part.put("where", plan.onCpu() ? "host" : p.place().key());
        }
        ObjectNode byPolicy = root.putObject("recompute_policies");
        policies.forEach(byPolicy::put);
        if (skippableLayers != null) {
            root.put("skippable_layers", skippableLayers);
        }
        ArrayNode settings = root.putArray("would_fit_with");
        advice.forEach(settings::add);
        return root.toString();
    }

    private static String gb(long bytes) {
        return String.format(Locale.ROOT, "%.2f GB", bytes / 1e9);
    }
}
