package io.qlora4j.bench;

import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.trainer.plan.RecomputePolicy;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.Callable;
import java.util.function.ToDoubleFunction;

/**
 * Issue 20's check: qlora4j's QLoRA step against the Python stack's dense LoRA step, side by side on one machine. The
 * training of the table: LoRA r 16 alpha 32 on every projection, full rows, AdamW; the Python stack
 * ({@link PythonStep}) over a float32 base with each layer recomputed, qlora4j over the same float32 base and over
 * NF4+DQ, with the full and the selective recompute. The entry point runs the shape, the 134M Llama (hidden
 * 768, 12 layers, vocab 32000) at batch 4 x 256.
 *
 * <p>Every run is a fresh process, as a training job is, and the contenders alternate, one run each per round, so
 * that a load on a shared machine strikes them alike: {@value #WARMUP} warm-up steps and the median of {@value #STEPS}.
 * Each contender's figure is its median over the rounds, and its largest peak RSS; tokens/s are divided by the Python
 * step's, and each run's all-parameter 6N throughput by the float32 matmul peak its own process measured (each
 * process multiplies with its own BLAS). The qlora4j children take this process's allocator settings (the
 * launcher's, {@code QLORA4J_ALLOCATOR}); the Python child runs with glibc's defaults.
 */
public final class SideBySideBenchmark {
    private static final int RANK = 16;
    private static final int WARMUP = 2;
    private static final int STEPS = 3;

    private SideBySideBenchmark() {}

    /** One run's figures: its step time, the matmul peak and peak RSS of its process. */
    record Run(double stepMs, double peakGflops, long hwm) {}

    /**
     * One contender's runs.
     *
     * @param label what it ran, in a few words
     * @param runs one per round
     */
    record Side(String label, List<Run> runs) {
        /** The median step time of the runs. */
        double stepMs() {
            return median(Run::stepMs);
        }

        /** The largest peak RSS of the runs. */
        long hwm() {
            return runs.stream().mapToLong(Run::hwm).max().orElseThrow();
        }

        /** The median of {@code figure} over the runs. */
        double median(ToDoubleFunction<Run> figure) {
            return ForwardBenchmark.median(runs, figure);
        }

        /**
         * Round by round, {@code other}'s step time over this one's (this one's speed relative to {@code other}): the
         * two runs of a round are minutes apart at most, so a machine that drifts over the rounds moves both.
         */
        double[] speedOver(Side other) {
            double[] ratios = new double[runs.size()];
            for (int round = 0; round < ratios.length; round++) {
                ratios[round] = other.runs.get(round).stepMs() / runs.get(round).stepMs();
            }
            return ratios;
        }
    }

    /** How one run of a contender is made. */
    private record Contender(String label, Callable<Run> run) {}

    /** Runs {@code rounds} (first argument, default 3) rounds of one fresh process per contender. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        Workload w = new Workload("~100M", BenchModels.hundredMillion(), 4, 256);
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 3;
        String missing = PythonStep.missing();
        if (missing != null) {
            System.err.println("SideBySideBenchmark: " + missing);
            System.exit(2);
        }
        System.out.println("SideBySideBenchmark: the " + w.name() + " LoRA step (r=" + RANK + " on all projections,"
                + " AdamW, batch " + w.batch() + " x " + w.seq() + "), the Python stack (" + PythonStep.interpreter()
                + " " + PythonStep.SCRIPT + ") against qlora4j");
        System.out.println(Machine.describe());
        System.out.println(rounds + " rounds of one fresh process per contender, " + WARMUP + " warm-up steps and the"
                + " median of " + STEPS + "; medians over the rounds, peak RSS the largest; 6N(all)/peak = 6 *"
                + " all_params * tokens / step time / the matmul peak of the run's own process");
        List<Side> sides = measure(w, rounds);
        System.out.print(table(w, sides));
        System.out.println();
        for (int recomputing : List.of(2, 3)) {
            Side side = sides.get(recomputing);
            double qlora = sides.get(0).stepMs() / side.stepMs();
            System.out.println(String.format(Locale.ROOT, "target (%s): at least the Python stack's tokens/s, aiming"
                    + " for 1.2x: %.2fx %s (round by round %s); peak RSS below the Python stack's: %s", side.label(),
                    qlora, qlora >= 1.0 ? "MET" : "MISSED", rounded(side.speedOver(sides.get(0))),
                    side.hwm() < sides.get(0).hwm() ? "MET" : "MISSED"));
        }
        double[] nf4OverDense = sides.get(1).speedOver(sides.get(2));
        double median = ForwardBenchmark.median(nf4OverDense);
        System.out.println(String.format(Locale.ROOT, "target: the NF4+DQ step at most 1.05x the dense one: %.3f %s"
                + " (the median of the rounds' ratios %s)", median, median <= 1.05 ? "MET" : "MISSED",
                rounded(nf4OverDense)));
    }

    private static String rounded(double[] ratios) {
        return Arrays.stream(ratios).mapToObj(r -> String.format(Locale.ROOT, "%.2f", r)).toList().toString();
    }

    /**
     * Measures {@code rounds} rounds over a random float32 checkpoint of {@code w}: the Python stack first, then
     * qlora4j over the dense base (full recompute) and over NF4+DQ: the full recompute, the full recompute with every
     * block's weights held from its forward pass to its backward ({@code held_weights_mb} large enough: one
     * dequantization per step instead of two, the same bits), then the selective recompute.
     */
    static List<Side> measure(Workload w, int rounds) throws Exception {
        try (RandomCheckpoint checkpoint = RandomCheckpoint.write(w.config(), DType.F32, 3)) {
            String stack = PythonStep.stack();
            List<Contender> contenders = List.of(
                    new Contender(PythonStep.describe(stack) + ", dense float32, recompute", () -> python(w, stack)),
                    qlora4j(w, checkpoint, BaseFormats.DENSE, RecomputePolicy.BLOCK),
                    qlora4j(w, checkpoint, BaseFormats.QLORA, RecomputePolicy.BLOCK),
                    qlora4j(w, checkpoint, BaseFormats.QLORA, RecomputePolicy.BLOCK, Long.MAX_VALUE),
                    qlora4j(w, checkpoint, BaseFormats.QLORA, TrainBenchmark.selective(w, null)));
            List<List<Run>> runs = new ArrayList<>();
            contenders.forEach(c -> runs.add(new ArrayList<>()));
            for (int round = 0; round < rounds; round++) {
                for (int c = 0; c < contenders.size(); c++) {
                    runs.get(c).add(contenders.get(c).run().call());
                }
            }
            List<Side> sides = new ArrayList<>();
            for (int c = 0; c < contenders.size(); c++) {
                sides.add(new Side(contenders.get(c).label(), List.copyOf(runs.get(c))));
            }
            return sides;
        }
    }

    /** The table of {@code sides}, the first being the Python stack's, each ratio against it. */
    static String table(Workload w, List<Side> sides) {
        StringBuilder out = new StringBuilder(String.format(Locale.ROOT, "%n%-66s %9s %9s %10s %13s %12s %12s%n",
                "contender", "step ms", "tokens/s", "/ Python", "6N(all)/peak", "peak RSS MB", "RSS / Python"));
        Side python = sides.get(0);
        for (Side s : sides) {
            out.append(String.format(Locale.ROOT, "%-66s %9.0f %9.1f %10.2f %13.2f %12.0f %12.2f%n", s.label(),
                    s.stepMs(), w.flops().tokens() / (s.stepMs() / 1e3), python.stepMs() / s.stepMs(),
                    s.median(r -> w.flops().allParamsOfPeak(r.stepMs(), r.peakGflops())), s.hwm() / 1e6,
                    (double) s.hwm() / python.hwm()));
            out.append("  steps ").append(s.runs().stream()
                    .map(r -> String.format(Locale.ROOT, "%.0f", r.stepMs())).toList()).append(" ms; matmul peaks ")
                    .append(s.runs().stream().map(r -> String.format(Locale.ROOT, "%.0f", r.peakGflops())).toList())
                    .append(" GFLOP/s\n");
        }
        return out.toString();
    }

    private static Run python(Workload w, String stack) throws Exception {
        Map<String, Long> r = PythonStep.run(w, stack, RANK, WARMUP, STEPS);
        return new Run(r.get("stepUs") / 1e3, r.get("peakMflops") / 1e3, r.get("hwm"));
    }

    private static Contender qlora4j(Workload w, RandomCheckpoint checkpoint, BaseFormat format,
            RecomputePolicy policy) {
        return qlora4j(w, checkpoint, format, policy, 0);
    }

    /** A qlora4j contender whose top blocks hold their dequantized weights within {@code heldWeightBytes}. */
    private static Contender qlora4j(Workload w, RandomCheckpoint checkpoint, BaseFormat format,
            RecomputePolicy policy, long heldWeightBytes) {
        String held = heldWeightBytes == 0 ? "" : ", every block's weights held";
        return new Contender("qlora4j: " + format.describe() + ", " + TrainBenchmark.label(policy) + held, () -> {
            TrainBenchmark.Result r = TrainBenchmark.child(w, checkpoint, format, policy, heldWeightBytes, WARMUP,
                    STEPS, Map.of());
            return new Run(r.stepMs(), r.peakGflops(), r.hwm());
        });
    }
}
