package io.qlora4j.bench;

import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.trainer.plan.RecomputePolicy;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Forward and QLoRA step throughput of every model family at the ~100M shape ({@link BenchModels#families}), each
 * as a ratio to the float32 matmul peak measured in the same run: the forward pass (batch 1 x 256, dense float32
 * and NF4+DQ, interleaved with the peak as {@link ForwardBenchmark} does) and the QLoRA step (NF4+DQ, LoRA r=16 on
 * every linear layer, batch 1 x 256, recompute on, in a fresh JVM that measures its own peak, as
 * {@link TrainBenchmark} does). The ratio is what compares families: their FLOP differ (tied heads, one key/value
 * head, fused projections) and {@link ModelFlops} counts each.
 */
public final class FamilyBenchmark {
    private static final int SEQ = 256;

    private FamilyBenchmark() {}

    /**
     * Runs every family and prints one row each; {@code memory [family ...]} instead measures the named families'
     * (default all) QLoRA steps at batch 4 x 256, recompute on and off, each against its memory plan.
     */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        if (args.length > 0 && args[0].equals("memory")) {
            memory(List.of(args).subList(1, args.length));
            return;
        }
        System.out.println("FamilyBenchmark: forward (batch 1 x " + SEQ + ", dense fp32 and NF4+DQ) and QLoRA step"
                + " (NF4+DQ, LoRA r=16 on all linear layers, batch 1 x " + SEQ + ", recompute) per family, ~100M shape");
        System.out.println(Machine.describe());
        System.out.println("forward: median of 5 interleaved rounds with the matmul peak; step: 1 warm-up, median of 3,"
                + " peak in the same child JVM");
        System.out.println();
        System.out.println(String.format(Locale.ROOT, "%-8s %8s %10s %9s %9s %9s %9s %9s %9s", "family", "params M",
                "fwd tok/s", "fwd/peak", "nf4/peak", "step ms", "step tok/s", "step/peak", "peak GF"));
        for (Map.Entry<String, DecoderConfig> e : BenchModels.families().entrySet()) {
            DecoderConfig config = e.getValue();
            ForwardBenchmark.Result forward = ForwardBenchmark.measure(config, 1, SEQ);
            List<TrainBenchmark.Result> steps = TrainBenchmark.measure(new Workload(e.getKey(), config, 1, SEQ), 1, 3,
                    List.of(RecomputePolicy.BLOCK));
            TrainBenchmark.Result step = steps.get(0);
            double denseMs = forward.forwardMs(ForwardBenchmark.DENSE);
            System.out.println(String.format(Locale.ROOT, "%-8s %8.1f %10.1f %9.2f %9.2f %9.0f %10.1f %9.2f %9.1f",
                    e.getKey(), forward.flops().params() / 1e6, SEQ / (denseMs / 1e3),
                    forward.ofPeak(ForwardBenchmark.DENSE), forward.ofPeak(ForwardBenchmark.NF4), step.stepMs(),
                    step.tokensPerSecond(), step.ofPeak(), forward.peakGflops()));
        }
    }

    /** Peak RSS against the plan of each of {@code names} (all when empty) at the ~100M shape, batch 4 x 256. */
    private static void memory(List<String> names) throws Exception {
        System.out.println("FamilyBenchmark memory: QLoRA steps (NF4+DQ, LoRA r=16 on all linear layers, AdamW), batch 4"
                + " x " + SEQ + ", recompute on and off, each in a fresh JVM (" + String.join(" ", ChildJvm.HEAP)
                + "): peak RSS against the memory plan");
        System.out.println(Machine.describe());
        System.out.println();
        System.out.println(TrainBenchmark.header());
        for (Map.Entry<String, DecoderConfig> e : BenchModels.families().entrySet()) {
            if (names.isEmpty() || names.contains(e.getKey())) {
                for (TrainBenchmark.Result r : TrainBenchmark.measure(new Workload(e.getKey(), e.getValue(), 4, SEQ), 1,
                        3)) {
                    System.out.println(TrainBenchmark.row(r));
                }
            }
        }
    }
}
