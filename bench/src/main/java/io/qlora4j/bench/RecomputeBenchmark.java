package io.qlora4j.bench;

import io.qlora4j.bench.TrainBenchmark.Result;
import java.util.ArrayList;
import java.util.Comparator;
import io.qlora4j.trainer.plan.RecomputePolicy;
import java.util.List;
import java.util.Locale;

/**
 * The recompute policies of issue 20 on the ~100M QLoRA step (NF4+DQ, LoRA r 16 on every projection, batch 4 x 256,
 * AdamW): every block recomputed ({@code gradient_checkpointing: true}), the default selective recompute
 * ({@code gradient_checkpointing_mode: selective}) and none ({@code gradient_checkpointing: false}). Each round runs
 * each policy in a fresh JVM ({@link TrainBenchmark}'s child: the median step, its {@code VmHWM}, then the float32
 * matmul peak in the same JVM), the rounds interleaved so that a load on the machine strikes all alike. Prints every
 * run, then per policy the best round's throughput as a ratio to the peak in 6N accounting (the same FLOP per token
 * for every policy), its peak RSS against the plan, and each round's step time over the full recompute's.
 * Targets: 6N/peak at least 0.95 (1.15 the moonshot), peak RSS below 1.76 GB (the Python stack's).
 */
public final class RecomputeBenchmark {
    /** Peak RSS of LLaMA-Factory's QLoRA step on this shape, which qlora4j must stay below (issue 20). */
    static final long PYTHON_RSS = 1_760_000_000L;

    private RecomputeBenchmark() {}

    /** Runs {@code rounds} (first argument, default 2) interleaved rounds of 1 warm-up and 2 measured steps each. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 2;
        Workload w = new Workload("~100M", BenchModels.hundredMillion(), 4, 256);
        System.out.println("RecomputeBenchmark: ~100M QLoRA step (NF4+DQ, LoRA r=16 on all projections, AdamW, batch 4 x"
                + " 256) under each recompute policy, " + rounds + " interleaved rounds, each run in a fresh JVM ("
                + String.join(" ", ChildJvm.HEAP) + "): 1 warm-up + median of 2 steps, then the matmul peak");
        System.out.println(Machine.describe());
        System.out.println("6N/peak: (6 * matmul_params * tokens + 4 * attention) / step time / float32 matmul peak, the"
                + " same count for every policy");
        System.out.println();
        System.out.println(TrainBenchmark.header());
        List<Result> runs = measure(w, rounds, 2);
        runs.forEach(r -> System.out.println(TrainBenchmark.row(r)));
        System.out.println();
        System.out.println(summary(runs, 3));
    }

    /** {@code rounds} rounds of the three policies on {@code w} over one random checkpoint, in run order. */
    static List<Result> measure(Workload w, int rounds, int steps) throws Exception {
        List<RecomputePolicy> order = new ArrayList<>();
        for (int i = 0; i < rounds; i++) {
            order.addAll(policies(w));
        }
        return TrainBenchmark.measure(w, 1, steps, order);
    }

    /** Full, the default selective, none. */
    static List<RecomputePolicy> policies(Workload w) {
        return List.of(RecomputePolicy.BLOCK, TrainBenchmark.selective(w), RecomputePolicy.NONE);
    }

    /** Per policy its best run (by 6N/peak), and each round's step times over the full recompute's. */
    static String summary(List<Result> runs, int perRound) {
        StringBuilder out = new StringBuilder();
        for (int p = 0; p < perRound; p++) {
            int first = p;
            Result best = runs.stream().filter(r -> r.policy().equals(runs.get(first).policy()))
                    .max(Comparator.comparingDouble(Result::ofPeak6n)).orElseThrow();
            out.append(String.format(Locale.ROOT, "%-28s best 6N/peak %.2f (%.0f tokens/s), peak RSS %.0f MB (%s 1.76"
                    + " GB), plan %.0f MB (RSS/plan %.3f)%n", TrainBenchmark.label(best.policy()), best.ofPeak6n(),
                    best.tokensPerSecond(), best.hwm() / 1e6, best.hwm() < PYTHON_RSS ? "below" : "NOT below",
                    best.plannedBytes() / 1e6, best.ofPlan()));
        }
        for (int i = 0; i + perRound <= runs.size(); i += perRound) {
            out.append(String.format(Locale.ROOT, "round %d: step time / full recompute's:", i / perRound + 1));
            for (int p = 1; p < perRound; p++) {
                out.append(String.format(Locale.ROOT, " %s %.3f", TrainBenchmark.label(runs.get(i + p).policy()),
                        runs.get(i + p).stepMs() / runs.get(i).stepMs()));
            }
            out.append('\n');
        }
        return out.toString();
    }
}
