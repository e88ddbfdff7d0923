package io.qlora4j.bench;

import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.trainer.plan.RecomputePolicy;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * What the launcher's OpenMP settings do to a QLoRA step (issue 20): the NF4+DQ step with the full recompute (LoRA r 16
 * on every projection, AdamW) at the ~100M shape (batch 4 x 256) and the 1.1B shape (batch 1 x 128), each in two fresh
 * JVMs paced in lockstep: one with the launcher's settings, whose libtorch threads spin briefly after an op and then
 * sleep ({@code OMP_WAIT_POLICY=PASSIVE GOMP_SPINCOUNT=10000}), or with the settings given, and one with neither
 * variable, whose threads spin for GNU libgomp's default 300,000 times first. A round is one step of each, in turn;
 * the ratio is the median of the rounds'; beside it, each child's step in 6N accounting over its own matmul peak and
 * its peak RSS. How threads wait moves no value, so the bits are the same.
 */
public final class WaitPolicyBenchmark {
    private static final List<Workload> WORKLOADS = List.of(
            new Workload("~100M", BenchModels.hundredMillion(), 4, 256),
            new Workload("TinyLlama-1.1B", BenchModels.tinyLlama(), 1, 128));
    private static final int WARMUP = 1;

    private WaitPolicyBenchmark() {}

    /**
     * {@code [rounds] [NAME=VALUE ...]}: lockstep rounds per shape (default 5), and the settings measured against
     * libgomp's default (default: the launcher's; e.g. {@code GOMP_SPINCOUNT=0} for threads that sleep at once).
     */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        int rounds = args.length > 0 ? Integer.parseInt(args[0]) : 5;
        Map<String, String> candidate = new HashMap<>(ChildJvm.PACED_ENVIRONMENT);
        for (int i = 1; i < args.length; i++) {
            String[] setting = args[i].split("=", 2);
            if (setting.length != 2 || setting[0].isEmpty()) {
                throw new IllegalArgumentException("a setting is NAME=VALUE, got " + args[i]);
            }
            candidate.put(setting[0], setting[1]);
        }
        String name = args.length > 1 ? String.join(" ", Arrays.copyOfRange(args, 1, args.length))
                : "the launcher's settings";
        System.out.println("WaitPolicyBenchmark: NF4+DQ step, full recompute, " + name + " against libgomp's"
                + " default (" + ChildJvm.WAIT_POLICY + " and " + ChildJvm.SPIN_COUNT + " unset), two fresh JVMs in"
                + " lockstep, " + rounds + " rounds");
        System.out.println(Machine.describe());
        for (Workload w : WORKLOADS) {
            measure(w, rounds, candidate);
        }
    }

    private static void measure(Workload w, int rounds, Map<String, String> candidate) throws Exception {
        Map<String, String> spinning = new HashMap<>(ChildJvm.PACED_ENVIRONMENT);
        spinning.put(ChildJvm.WAIT_POLICY, ""); // unset: libgomp's default
        spinning.put(ChildJvm.SPIN_COUNT, "");
        try (RandomCheckpoint checkpoint = RandomCheckpoint.write(w.config(), DType.BF16, 3);
                ChildProcess tried = TrainBenchmark.start(w, checkpoint, BaseFormats.QLORA, RecomputePolicy.BLOCK,
                        0, WARMUP, rounds, candidate);
                ChildProcess spin = TrainBenchmark.start(w, checkpoint, BaseFormats.QLORA, RecomputePolicy.BLOCK, 0,
                        WARMUP, rounds, spinning)) {
            tried.awaitTurn();
            spin.awaitTurn();
            double[][] ms = ChildProcess.lockstep(List.of(tried, spin), rounds, 0);
            double[] ratios = ChildProcess.ratios(ms[0], ms[1]);
            TrainBenchmark.Result withSettings = TrainBenchmark.result(w, checkpoint, BaseFormats.QLORA,
                    RecomputePolicy.BLOCK, 0, tried.finish());
            TrainBenchmark.Result byDefault = TrainBenchmark.result(w, checkpoint, BaseFormats.QLORA,
                    RecomputePolicy.BLOCK, 0, spin.finish());
            System.out.println(String.format(Locale.ROOT,
                    "%s b%dx%d: %.0f ms against libgomp's default %.0f ms (medians); ratio %.3f, rounds %s; 6N/peak %.2f"
                            + " / %.2f (each child's own matmul peak); peak RSS %d / %d MB",
                    w.name(), w.batch(), w.seq(), ForwardBenchmark.median(ms[0]), ForwardBenchmark.median(ms[1]),
                    ForwardBenchmark.median(ratios), ChildProcess.rounds(ratios),
                    withSettings.ofPeak6n(), byDefault.ofPeak6n(), withSettings.hwm() >> 20, byDefault.hwm() >> 20));
        }
    }
}
