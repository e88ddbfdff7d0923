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

/**
 * Issue 20's check: qlora4j's QLoRA step against the Python stack's dense LoRA step, side by side on one machine. The
 * training of the table: LoRA r 16 alpha 32 on every projection, full rows, AdamW; the Python stack
 * ({@link PythonStep}) over a float32 base with each layer recomputed, qlora4j over the same float32 base and over
 * NF4+DQ, with the full recompute (of every layer, or of all but the top ones) and the selective one. The entry point
 * runs the shape, the 134M Llama (hidden 768, 12 layers, vocab 32000) at batch 4 x 256.
 *
 * <p>Each contender is a fresh process, as a training job is, loaded and warmed up ({@value #WARMUP} steps) one after
 * the other; then they take their timed steps in lockstep ({@link ChildProcess}, paced): a round is one step of each,
 * in turn, starting with a different contender each round, {@value #PAUSE_MS} ms apart so that no process's idle
 * threads spin into the next one's step. The machine's speed drifts by up to a third over minutes; the steps of a round
 * are seconds apart, so the drift moves them alike, and each target is read round by round. A contender's figure is
 * its median step, with its process's peak RSS; tokens/s are divided by the Python step's, and its all-parameter 6N
 * throughput by the float32 matmul peak its own process measured after its steps (each process multiplies with its
 * own BLAS). The qlora4j children take this process's allocator settings (the launcher's, {@code
 * QLORA4J_ALLOCATOR}); the Python child runs with glibc's defaults.
 */
public final class SideBySideBenchmark {
    /** Where each contender stands in {@link #measure}'s list, in the order they are started. */
    static final int PYTHON = 0;
    static final int DENSE = 1;
    static final int NF4 = 2;
    static final int NF4_HELD = 3;
    static final int NF4_SKIPPING = 4;
    private static final int RANK = 16;
    private static final int WARMUP = 2;
    private static final long PAUSE_MS = 1000;
    /**
     * The top layers the skipping contender leaves out of its recompute: three, about 115 to 140 MB each on this
     * shape, which keeps its peak RSS below the Python stack's (docs/BENCHMARKS.md, "Skipped layers").
     */
    private static final int SKIPPED_LAYERS = 3;

    private SideBySideBenchmark() {}

    /**
     * One contender's figures.
     *
     * @param label what it ran, in a few words
     * @param stepsMs its timed steps, one per round
     * @param peakGflops the float32 matmul peak its process measured
     * @param hwm its process's peak RSS, bytes
     */
    record Side(String label, List<Double> stepsMs, double peakGflops, long hwm) {
        /** The median step time. */
        double stepMs() {
            return ForwardBenchmark.median(stepsMs, Double::doubleValue);
        }

        /**
         * Round by round, this one's step time over {@code other}'s ({@code other}'s speed relative to this one's:
         * {@code python.timeOver(side)} is the side's tokens/s over the Python stack's).
         */
        double[] timeOver(Side other) {
            return ChildProcess.ratios(steps(), other.steps());
        }

        private double[] steps() {
            return stepsMs.stream().mapToDouble(Double::doubleValue).toArray();
        }
    }

    /** How a contender's process is started: paced, and warming up on its own. */
    private record Contender(String label, Callable<ChildProcess> start) {}

    /** Runs {@code rounds} (first argument, default 7) rounds of lockstep steps. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        Workload w = new Workload("~100M", BenchModels.hundredMillion(), 4, 256);
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 7;
        String missing = PythonStep.missing();
        if (missing != null) {
            System.err.println("SideBySideBenchmark: " + missing);
            System.exit(2);
        }
        System.out.println("SideBySideBenchmark: the " + w.name() + " LoRA step (r=" + RANK + " on all projections,"
                + " AdamW, batch " + w.batch() + " x " + w.seq() + "), the Python stack (" + PythonStep.interpreter()
                + " " + PythonStep.SCRIPT + ") against qlora4j");
        System.out.println(Machine.describe());
        System.out.println("one fresh process per contender, " + WARMUP + " warm-up steps, then " + rounds + " rounds"
                + " of one step each in turn, " + PAUSE_MS + " ms apart; medians over the rounds; 6N(all)/peak = 6 *"
                + " all_params * tokens / step time / the matmul peak of the contender's own process");
        List<Side> sides = measure(w, rounds);
        System.out.print(table(w, sides));
        System.out.println();
        Side python = sides.get(PYTHON);
        for (int recomputing : List.of(NF4, NF4_HELD, NF4_SKIPPING)) {
            Side side = sides.get(recomputing);
            double[] ratios = python.timeOver(side);
            double qlora = ForwardBenchmark.median(ratios);
            System.out.println(String.format(Locale.ROOT, "target (%s): at least the Python stack's tokens/s, aiming"
                    + " for 1.2x: %.2fx %s (the median of the rounds' ratios %s; below 1.0 in %d of %d); peak RSS"
                    + " below the Python stack's: %s", side.label(), qlora, qlora >= 1.0 ? "MET" : "MISSED",
                    ChildProcess.rounds(ratios), below(ratios, 1.0), ratios.length,
                    side.hwm() < python.hwm() ? "MET" : "MISSED"));
        }
        double[] nf4OverDense = sides.get(NF4).timeOver(sides.get(DENSE));
        double median = ForwardBenchmark.median(nf4OverDense);
        System.out.println(String.format(Locale.ROOT, "target: the NF4+DQ step at most 1.05x the dense one: %.3f %s"
                + " (the median of the rounds' ratios %s; above 1.05 in %d of %d)", median,
                median <= 1.05 ? "MET" : "MISSED", ChildProcess.rounds(nf4OverDense),
                nf4OverDense.length - below(nf4OverDense, 1.05 + 1e-9), nf4OverDense.length));
    }

    private static long below(double[] ratios, double bound) {
        return Arrays.stream(ratios).filter(r -> r < bound).count();
    }

    /**
     * Measures {@code rounds} rounds over a random float32 checkpoint of {@code w}: the Python stack first, then
     * qlora4j over the dense base (full recompute) and over NF4+DQ: the full recompute, the full recompute with every
     * block's weights held from its forward pass to its backward ({@code held_weights_mb} large enough: one
     * dequantization per step instead of two, the same bits), the full recompute leaving out the top
     * {@value #SKIPPED_LAYERS} layers (the same bits), then the selective recompute: the sides in that order
     * ({@link #PYTHON} to {@link #NF4_SKIPPING}, then the selective one).
     */
    static List<Side> measure(Workload w, int rounds) throws Exception {
        try (RandomCheckpoint checkpoint = RandomCheckpoint.write(w.config(), DType.F32, 3)) {
            String stack = PythonStep.stack();
            List<Contender> contenders = List.of(
                    new Contender(PythonStep.describe(stack) + ", dense float32, recompute",
                            () -> PythonStep.start(w, stack, RANK, WARMUP, rounds)),
                    qlora4j(w, checkpoint, BaseFormats.DENSE, RecomputePolicy.BLOCK, 0, rounds),
                    qlora4j(w, checkpoint, BaseFormats.QLORA, RecomputePolicy.BLOCK, 0, rounds),
                    qlora4j(w, checkpoint, BaseFormats.QLORA, RecomputePolicy.BLOCK, Long.MAX_VALUE, rounds),
                    qlora4j(w, checkpoint, BaseFormats.QLORA, RecomputePolicy.BLOCK.skipping(SKIPPED_LAYERS), 0,
                            rounds),
                    qlora4j(w, checkpoint, BaseFormats.QLORA, TrainBenchmark.selective(w, null), 0, rounds));
            return lockstep(contenders, rounds);
        }
    }

    /** Starts each contender in turn, runs {@code rounds} rounds of their paced steps, then lets each finish. */
    private static List<Side> lockstep(List<Contender> contenders, int rounds) throws Exception {
        List<ChildProcess> children = new ArrayList<>();
        try {
            for (Contender c : contenders) {
                children.add(c.start().call());
                children.get(children.size() - 1).awaitTurn();
            }
            double[][] ms = ChildProcess.lockstep(children, rounds, PAUSE_MS);
            List<Side> sides = new ArrayList<>();
            for (int c = 0; c < contenders.size(); c++) {
                Map<String, Long> r = children.get(c).finish();
                sides.add(new Side(contenders.get(c).label(), Arrays.stream(ms[c]).boxed().toList(),
                        r.get("peakMflops") / 1e3, r.get("hwm")));
            }
            return sides;
        } finally {
            children.forEach(ChildProcess::close);
        }
    }

    /** The table of {@code sides}, the first being the Python stack's, each ratio against it. */
    static String table(Workload w, List<Side> sides) {
        StringBuilder out = new StringBuilder(String.format(Locale.ROOT, "%n%-66s %9s %9s %10s %13s %12s %12s%n",
                "contender", "step ms", "tokens/s", "/ Python", "6N(all)/peak", "peak RSS MB", "RSS / Python"));
        Side python = sides.get(PYTHON);
        for (Side s : sides) {
            out.append(String.format(Locale.ROOT, "%-66s %9.0f %9.1f %10.2f %13.2f %12.0f %12.2f%n", s.label(),
                    s.stepMs(), w.flops().tokens() / (s.stepMs() / 1e3), python.stepMs() / s.stepMs(),
                    w.flops().allParamsOfPeak(s.stepMs(), s.peakGflops()), s.hwm() / 1e6,
                    (double) s.hwm() / python.hwm()));
            out.append("  steps ").append(s.stepsMs().stream()
                    .map(ms -> String.format(Locale.ROOT, "%.0f", ms)).toList()).append(" ms; matmul peak ")
                    .append(String.format(Locale.ROOT, "%.0f", s.peakGflops())).append(" GFLOP/s\n");
        }
        return out.toString();
    }

    /** A paced qlora4j contender whose top blocks hold their dequantized weights within {@code heldWeightBytes}. */
    private static Contender qlora4j(Workload w, RandomCheckpoint checkpoint, BaseFormat format,
            RecomputePolicy policy, long heldWeightBytes, int rounds) {
        String held = heldWeightBytes == 0 ? "" : ", every block's weights held";
        return new Contender("qlora4j: " + format.describe() + ", " + TrainBenchmark.label(policy) + held,
                () -> TrainBenchmark.start(w, checkpoint, format, policy, heldWeightBytes, WARMUP, rounds,
                        ChildJvm.PACED_ENVIRONMENT));
    }
}
