package io.qlora4j.bench;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.adapters.LoraAdapters;
import io.qlora4j.adapters.LoraSettings;
import io.qlora4j.bench.TrainBenchmark.Result;
import io.qlora4j.data.Batch;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.optim.AdamW;
import io.qlora4j.optim.Gradients;
import io.qlora4j.optim.Parameter;
import io.qlora4j.trainer.TrainStep;
import io.qlora4j.trainer.plan.RecomputePolicy;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * The recompute policies of issue 20 on the ~100M QLoRA step (NF4+DQ, LoRA r 16 on every projection, batch 4 x 256,
 * AdamW): every block recomputed ({@code gradient_checkpointing: true}), the default selective recompute
 * ({@code gradient_checkpointing_mode: selective}) and none ({@code gradient_checkpointing: false}).
 *
 * <p>Speed: one JVM loads the model once and runs the policies' steps interleaved, round after round (one step of
 * each, then the float32 matmul peak), so that a load on a shared machine strikes them alike; each policy's figure is
 * its median step, against the median peak, in 6N accounting (the same FLOP per token for every policy). Memory:
 * each policy in a fresh JVM ({@link TrainBenchmark}'s child), its {@code VmHWM} against the memory plan. Targets:
 * 6N/peak at least 0.95 (1.15 the moonshot), peak RSS below 1.76 GB (the Python stack's).
 */
public final class RecomputeBenchmark {
    /** Peak RSS of LLaMA-Factory's QLoRA step on this shape, which qlora4j must stay below (issue 20). */
    static final long PYTHON_RSS = 1_760_000_000L;
    private static final int RANK = 16;

    private RecomputeBenchmark() {}

    /**
     * Runs {@code rounds} (first argument, default 3) interleaved speed rounds, then one memory run per policy; with a
     * second argument, a {@code gradient_checkpointing_budget_mb}, the full recompute against the selective one within
     * that budget only. {@code --speed} is the speed child.
     */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        Workload w = new Workload("~100M", BenchModels.hundredMillion(), 4, 256);
        if (args.length > 0 && args[0].equals("--speed")) {
            speedChild(w, policies(w, args.length > 3 ? Double.valueOf(args[3]) : null), Path.of(args[1]),
                    Integer.parseInt(args[2]));
            return;
        }
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        Double budgetMb = args.length > 1 ? Double.valueOf(args[1]) : null;
        System.out.println("RecomputeBenchmark: ~100M QLoRA step (NF4+DQ, LoRA r=" + RANK + " on all projections, AdamW,"
                + " batch 4 x 256) under each recompute policy");
        System.out.println(Machine.describe());
        System.out.println("speed: one JVM (" + String.join(" ", ChildJvm.HEAP) + "), 1 warm-up step per policy, then "
                + rounds + " rounds of one step per policy and the matmul peak; medians. 6N/peak = (6 * matmul_params"
                + " * tokens + 4 * attention) / step time / peak, the same count for every policy; 6N(all)/peak ="
                + " 6 * all_params * tokens / step time / peak, the count of issue 20's side-by-side table");
        List<RecomputePolicy> policies = policies(w, budgetMb);
        System.out.println(String.format(Locale.ROOT, "%n%-24s %9s %9s %8s %13s %11s", "policy", "step ms",
                "tokens/s", "6N/peak", "6N(all)/peak", "step / full"));
        Map<String, Long> speed;
        try (RandomCheckpoint checkpoint = RandomCheckpoint.write(w.config(), DType.BF16, 3)) {
            List<String> child = new ArrayList<>(List.of("--speed", checkpoint.dir().toString(), String.valueOf(rounds)));
            if (budgetMb != null) {
                child.add(budgetMb.toString());
            }
            speed = ChildJvm.run(RecomputeBenchmark.class, ChildJvm.HEAP, child.toArray(String[]::new));
        }
        double peak = speed.get("peakMflops") / 1e3;
        double full = speed.get("p0Us") / 1e3;
        for (int p = 0; p < policies.size(); p++) {
            double ms = speed.get("p" + p + "Us") / 1e3;
            System.out.println(String.format(Locale.ROOT, "%-24s %9.0f %9.1f %8.2f %13.2f %11.3f",
                    TrainBenchmark.label(policies.get(p)), ms, w.flops().tokens() / (ms / 1e3),
                    w.flops().training(true) / (ms * 1e6) / peak, w.flops().allParamsTraining() / (ms * 1e6) / peak,
                    ms / full));
        }
        System.out.println(String.format(Locale.ROOT, "float32 matmul peak (median of the rounds): %.1f GFLOP/s", peak));
        System.out.println("\nmemory: each policy in a fresh JVM, 1 warm-up + 1 step (its step time is not a speed figure)");
        System.out.println(TrainBenchmark.header());
        for (Result r : TrainBenchmark.measure(w, 1, 1, policies)) {
            System.out.println(TrainBenchmark.row(r));
            System.out.println(String.format(Locale.ROOT, "  %s: peak RSS %.0f MB, %s the Python stack's 1.76 GB; plan"
                    + " %.0f MB (RSS/plan %.3f)", TrainBenchmark.label(r.policy()), r.hwm() / 1e6,
                    r.hwm() < PYTHON_RSS ? "below" : "NOT below", r.plannedBytes() / 1e6, r.ofPlan()));
        }
    }

    /** Full, the default selective and none; or with a budget (MiB), full and the selective within it. */
    static List<RecomputePolicy> policies(Workload w, Double budgetMb) {
        return budgetMb == null ? List.of(RecomputePolicy.BLOCK, TrainBenchmark.selective(w, null), RecomputePolicy.NONE)
                : List.of(RecomputePolicy.BLOCK, TrainBenchmark.selective(w, (long) (budgetMb * (1 << 20))));
    }

    /** The speed child: every policy's step on one model, interleaved; reports medians as {@code p<i>Us}. */
    private static void speedChild(Workload w, List<RecomputePolicy> policies, Path dir, int rounds) throws Exception {
        try (NDManager manager = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().optFormat(BaseFormats.QLORA).build().load(dir, manager);
                LoraAdapters lora = LoraAdapters.attach(model, LoraSettings.defaults(RANK), manager, 1);
                AdamW adam = AdamW.builder().build()) {
            List<Parameter> params = new ArrayList<>();
            lora.parameters().forEach((name, value) -> params.add(new Parameter(name, value)));
            Batch batch = TrainBenchmark.randomBatch(model.config().vocabSize(), w.batch(), w.seq());
            List<TrainStep> steps = policies.stream().map(p -> TrainStep.builder(model).optRecompute(p.recomputes())
                    .optKeptProducts(p.kept()).build()).toList();
            double[][] ms = new double[policies.size()][rounds];
            double[] peaks = new double[rounds];
            for (int round = -1; round < rounds; round++) {
                for (int p = 0; p < steps.size(); p++) {
                    long start = System.nanoTime();
                    steps.get(p).accumulate(List.of(batch), round + 1);
                    adam.step(params, 1e-4);
                    Gradients.zero(params);
                    if (round >= 0) {
                        ms[p][round] = (System.nanoTime() - start) / 1e6;
                    }
                }
                if (round >= 0) {
                    peaks[round] = MatmulPeak.medianGflops(manager, DataType.FLOAT32, 1);
                }
            }
            for (int p = 0; p < policies.size(); p++) {
                ChildJvm.result("p" + p + "Us", Math.round(ForwardBenchmark.median(ms[p]) * 1e3));
            }
            ChildJvm.result("peakMflops", Math.round(ForwardBenchmark.median(peaks) * 1e3));
        }
    }
}
