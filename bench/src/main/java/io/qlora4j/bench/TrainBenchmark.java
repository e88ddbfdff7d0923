package io.qlora4j.bench;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.adapters.LoraAdapters;
import io.qlora4j.adapters.LoraSettings;
import io.qlora4j.data.Batch;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.optim.AdamW;
import io.qlora4j.optim.Gradients;
import io.qlora4j.optim.LossScaler;
import io.qlora4j.optim.Optim;
import io.qlora4j.optim.Parameter;
import io.qlora4j.trainer.TrainStep;
import io.qlora4j.trainer.cli.ProcessMemory;
import io.qlora4j.trainer.plan.ActivationModel;
import io.qlora4j.trainer.plan.ActivationModel.Recompute;
import io.qlora4j.trainer.plan.MemoryPlanner;
import io.qlora4j.trainer.plan.ModelShape;
import io.qlora4j.trainer.plan.ProcessOverhead;
import io.qlora4j.trainer.plan.RecomputePolicy;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * QLoRA training throughput and peak memory: a random bf16 checkpoint is loaded with NF4+DQ (or another base format,
 * {@link #measureFormats}) through {@link ModelLoader}, LoRA r=16 is attached to every linear layer of every block,
 * and each step runs forward and backward ({@link TrainStep#accumulate}) and an AdamW step on the LoRA parameters.
 * Each configuration (a model shape, a base format, a recompute policy) runs in a fresh JVM ({@link ChildJvm#HEAP})
 * that reports the median step time, its
 * {@code VmHWM} and, after that reading so its operands do not count, the float32 matmul peak. GFLOP/s count
 * {@link ModelFlops#training}: 6N per token with recompute, 4N without, plus the attention products; {@link
 * Result#ofPeak6n} counts 6N for every policy, so that policies compare by throughput (issue 20's accounting).
 * Targets (issue 4): at least 0.4 of peak on the ~100M config; the 1.1B config's peak RSS at most 2.0 GB.
 */
public final class TrainBenchmark {
    private static final int RANK = 16;
    private static final int PEAK_RUNS = 3;

    private TrainBenchmark() {}

    /** Selective, keeping what a job keeps on {@code w} within {@code budgetBytes} (null: every product). */
    static RecomputePolicy selective(Workload w, Long budgetBytes) {
        return RecomputePolicy.selective(activations(w).keptWithin(budgetBytes, w.batch(), w.seq()));
    }

    /** The child's argument for {@code policy}: {@code MODE[=kept,...][/skipped layers]}. */
    private static String id(RecomputePolicy policy) {
        return policy.mode().name() + (policy.kept().isEmpty() ? "" : "=" + String.join(",", policy.kept()))
                + (policy.skippedLayers() == 0 ? "" : "/" + policy.skippedLayers());
    }

    private static RecomputePolicy parse(String id) {
        String[] skip = id.split("/", 2);
        String[] parts = skip[0].split("=", 2);
        return new RecomputePolicy(Recompute.valueOf(parts[0]), parts.length == 1 ? List.of()
                : List.of(parts[1].split(",")), skip.length == 1 ? 0 : Integer.parseInt(skip[1]));
    }

    /** How tables name {@code policy}: selective ones by their number of kept projections. */
    static String label(RecomputePolicy policy) {
        String label = policy.mode() == Recompute.SELECTIVE ? "selective (" + policy.kept().size() + " kept)"
                : policy.recomputes() ? "recompute" : "no recompute";
        return policy.skippedLayers() == 0 ? label : label + ", top " + policy.skippedLayers() + " not recomputed";
    }

    /** The activation model of a LoRA r 16 step of {@code w} in float32. */
    private static ActivationModel activations(Workload w) {
        return new ActivationModel(ModelShape.of(w.config()), 4, RANK, false, 0);
    }

    /**
     * The figures of one configuration.
     *
     * @param workload what was trained
     * @param format the base format trained over ({@link BaseFormat#describe})
     * @param policy what the backward pass recomputed
     * @param stepMs the median step time (forward, backward, optimizer)
     * @param peakGflops the float32 matmul peak measured in the same JVM
     * @param hwm that JVM's peak RSS ({@code VmHWM}), bytes
     * @param modelBytes the bytes held by the loaded (packed) model
     * @param plannedBytes the memory planner's peak for the same run on this machine kind (process included)
     */
    record Result(Workload workload, String format, RecomputePolicy policy, double stepMs, double peakGflops, long hwm,
            long modelBytes, long plannedBytes) {
        /** Measured peak RSS over the planned peak. */
        double ofPlan() {
            return (double) hwm / plannedBytes;
        }

        /** Trained tokens per second. */
        double tokensPerSecond() {
            return workload.flops().tokens() / (stepMs / 1e3);
        }

        /** Achieved GFLOP/s by {@link ModelFlops#training}. */
        double gflops() {
            return workload.flops().training(policy.recomputes()) / (stepMs * 1e6);
        }

        /** Achieved over peak. */
        double ofPeak() {
            return gflops() / peakGflops;
        }

        /** Throughput over peak counting 6N (and four attention passes) per token whatever the policy. */
        double ofPeak6n() {
            return workload.flops().training(true) / (stepMs * 1e6) / peakGflops;
        }

        /** The configuration in a few words, for tables. */
        String label() {
            return workload.name() + " b" + workload.batch() + "x" + workload.seq() + " " + TrainBenchmark.label(policy) + ", " + format;
        }
    }

    /** Runs the ~100M config (batch 4 x 256) and the 1.1B config (batch 1 x 128), recompute on and off; {@code --train} is the child. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        if (args.length == 9 && args[0].equals("--train")) {
            train(Path.of(args[1]), Integer.parseInt(args[2]), Integer.parseInt(args[3]), parse(args[4]),
                    Long.parseLong(args[5]), Integer.parseInt(args[6]), Integer.parseInt(args[7]),
                    BenchFormats.of(args[8]));
            return;
        }
        System.out.println("TrainBenchmark: QLoRA steps (NF4+DQ base, LoRA r=" + RANK + " on all linear layers, AdamW),"
                + " each configuration in a fresh JVM (" + String.join(" ", ChildJvm.HEAP) + ")");
        System.out.println(Machine.describe());
        System.out.println("libtorch intra-op threads: " + System.getProperty("ai.djl.pytorch.num_threads", "default")
                + " (-Dai.djl.pytorch.num_threads=N)");
        System.out.println("GFLOP per step = 6 * matmul_params * tokens + 4 * attention with recompute, 4 * matmul_params"
                + " * tokens + 3 * attention without (attention = 4 * layers * seq^2 * hidden * batch per forward)");
        System.out.println("1 warm-up step, median of 3 measured; peak = DJL matMul 2048^3 in the same JVM, after VmHWM is read");
        System.out.println();
        System.out.println(header());
        List<Result> results = new ArrayList<>();
        for (Workload w : List.of(new Workload("~100M", BenchModels.hundredMillion(), 4, 256),
                new Workload("TinyLlama-1.1B", BenchModels.tinyLlama(), 1, 128))) {
            for (Result r : measure(w, 1, 3)) {
                System.out.println(row(r));
                results.add(r);
            }
        }
        double ofPeak = results.get(0).ofPeak();
        long hwm = results.stream().filter(r -> r.workload().config().numHiddenLayers() == 22
                && r.policy().equals(RecomputePolicy.BLOCK))
                .mapToLong(Result::hwm).findFirst().orElseThrow();
        System.out.printf(Locale.ROOT, "%ntargets: ~100M recompute >= 0.40 of peak: %.2f %s; 1.1B recompute peak RSS"
                + " <= 2.0 GB: %.2f GB %s%n", ofPeak, ofPeak >= 0.4 ? "MET" : "MISSED", hwm / 1e9,
                hwm <= 2_000_000_000L ? "MET" : "MISSED");
    }

    /**
     * Writes a random checkpoint of the workload and measures it over NF4+DQ with every block recomputed, with the
     * default selective recompute, then without recompute, each in a fresh JVM.
     */
    static List<Result> measure(Workload w, int warmup, int steps) throws Exception {
        return measure(w, warmup, steps, List.of(RecomputePolicy.BLOCK, selective(w, null), RecomputePolicy.NONE));
    }

    /** {@link #measure(Workload, int, int)} with the policies given, in order. */
    static List<Result> measure(Workload w, int warmup, int steps, List<RecomputePolicy> policies) throws Exception {
        List<Result> results = new ArrayList<>();
        try (RandomCheckpoint checkpoint = RandomCheckpoint.write(w.config(), DType.BF16, 3)) {
            for (RecomputePolicy policy : policies) {
                results.add(child(w, checkpoint, BaseFormats.QLORA, policy, warmup, steps));
            }
        }
        return results;
    }

    /**
     * A base format's step beside NF4+DQ's.
     *
     * @param result its figures, from its own child
     * @param overNf4 its step time over NF4+DQ's, the median of the rounds' ratios (1 for NF4+DQ itself)
     */
    record FormatStep(Result result, double overNf4) {}

    /**
     * Steps with recompute over each of {@code formats}, quantized on the fly from one random checkpoint of the
     * workload, then over a random pre-quantized checkpoint of the same shape in each of {@code prequantized} (AQLM,
     * GPTQ, AWQ: {@link RandomCheckpoint#writePrequantized}); each in a fresh JVM, one after the other, and each paced
     * in lockstep with one NF4+DQ child that lives through them all ({@link ChildProcess}): a round is one step of
     * each of the two, in turn, so that the ratio to NF4+DQ is read seconds apart, not minutes. NF4+DQ comes first.
     */
    static List<FormatStep> measureFormats(Workload w, List<BaseFormat> formats, List<BaseFormat> prequantized,
            int warmup, int steps) throws Exception {
        List<BaseFormat> others = formats.stream().filter(f -> !f.equals(BaseFormats.QLORA)).toList();
        List<FormatStep> results = new ArrayList<>();
        try (RandomCheckpoint checkpoint = RandomCheckpoint.write(w.config(), DType.BF16, 3);
                ChildProcess nf4 = start(w, checkpoint, BaseFormats.QLORA, RecomputePolicy.BLOCK, 0, warmup,
                        steps * (others.size() + prequantized.size()), ChildJvm.PACED_ENVIRONMENT)) {
            nf4.awaitTurn();
            for (BaseFormat format : others) {
                results.add(beside(nf4, w, checkpoint, format, warmup, steps));
            }
            for (BaseFormat format : prequantized) {
                try (RandomCheckpoint stored = RandomCheckpoint.writePrequantized(w.config(), format, 3)) {
                    results.add(beside(nf4, w, stored, stored.stored(), warmup, steps));
                }
            }
            Result reference = result(w, checkpoint, BaseFormats.QLORA, RecomputePolicy.BLOCK, 0, nf4.finish());
            System.out.println(row(reference) + " (the NF4+DQ child beside them all)");
            results.add(0, new FormatStep(reference, 1));
        }
        return results;
    }

    /** {@code format}'s child, paced in lockstep with the waiting {@code nf4} child for {@code steps} rounds. */
    private static FormatStep beside(ChildProcess nf4, Workload w, RandomCheckpoint checkpoint, BaseFormat format,
            int warmup, int steps) throws Exception {
        try (ChildProcess child = start(w, checkpoint, format, RecomputePolicy.BLOCK, 0, warmup, steps,
                ChildJvm.PACED_ENVIRONMENT)) {
            child.awaitTurn();
            double[][] ms = ChildProcess.lockstep(List.of(nf4, child), steps, 0);
            double[] ratios = ChildProcess.ratios(ms[1], ms[0]);
            Result r = result(w, checkpoint, format, RecomputePolicy.BLOCK, 0, child.finish());
            double overNf4 = ForwardBenchmark.median(ratios);
            System.out.println(row(r) + String.format(Locale.ROOT, " / NF4+DQ %.2f (rounds %s)", overNf4,
                    ChildProcess.rounds(ratios)));
            return new FormatStep(r, overNf4);
        }
    }

    /** One configuration in a fresh JVM (a pre-quantized checkpoint keeps its own format whatever {@code format}). */
    static Result child(Workload w, RandomCheckpoint checkpoint, BaseFormat format, RecomputePolicy policy,
            int warmup, int steps) throws Exception {
        return child(w, checkpoint, format, policy, warmup, steps, Map.of());
    }

    /**
     * {@link #child(Workload, RandomCheckpoint, BaseFormat, RecomputePolicy, int, int)} with {@code environment} set
     * in the child (an allocator profile); the plan stays this JVM's.
     */
    static Result child(Workload w, RandomCheckpoint checkpoint, BaseFormat format, RecomputePolicy policy,
            int warmup, int steps, Map<String, String> environment) throws Exception {
        return child(w, checkpoint, format, policy, 0, warmup, steps, environment);
    }

    /**
     * {@link #child(Workload, RandomCheckpoint, BaseFormat, RecomputePolicy, int, int, Map)} with the top blocks
     * holding their dequantized weights within {@code heldWeightBytes} ({@code held_weights_mb}; the same bits).
     */
    static Result child(Workload w, RandomCheckpoint checkpoint, BaseFormat format, RecomputePolicy policy,
            long heldWeightBytes, int warmup, int steps, Map<String, String> environment) throws Exception {
        try (ChildProcess child = start(w, checkpoint, format, policy, heldWeightBytes, warmup, steps, environment)) {
            return result(w, checkpoint, format, policy, heldWeightBytes, child.finish());
        }
    }

    /** The figures of a finished child of {@link #start}, its {@code result.} lines {@code r}. */
    static Result result(Workload w, RandomCheckpoint checkpoint, BaseFormat format, RecomputePolicy policy,
            long heldWeightBytes, Map<String, Long> r) {
        BaseFormat stored = checkpoint.stored();
        return new Result(w, format.describe(), policy, r.get("stepUs") / 1e3, r.get("peakMflops") / 1e3,
                r.get("hwm"), r.get("modelBytes"),
                planned(w, stored == null ? format : stored, policy, heldWeightBytes));
    }

    /**
     * Starts the child of {@link #child(Workload, RandomCheckpoint, BaseFormat, RecomputePolicy, long, int, int, Map)}
     * and returns it unfinished, for a parent that paces its timed steps ({@code environment} setting {@link
     * ChildJvm#PACED}).
     */
    static ChildProcess start(Workload w, RandomCheckpoint checkpoint, BaseFormat format, RecomputePolicy policy,
            long heldWeightBytes, int warmup, int steps, Map<String, String> environment) throws IOException {
        BaseFormat requested = checkpoint.stored() == null ? format : BaseFormats.DENSE;
        return ChildJvm.start(TrainBenchmark.class, ChildJvm.HEAP, environment, "--train", checkpoint.dir().toString(),
                String.valueOf(w.batch()), String.valueOf(w.seq()), id(policy), String.valueOf(heldWeightBytes),
                String.valueOf(warmup), String.valueOf(steps), BenchFormats.id(requested));
    }

    /**
     * The planner's peak for the child's run: the base in {@code format}, LoRA r 16 on all projections, adamw_torch,
     * {@code heldWeightBytes} of held weights.
     */
    static long planned(Workload w, BaseFormat format, RecomputePolicy policy, long heldWeightBytes) {
        return MemoryPlanner.builder(ModelShape.of(w.config())).optFormat(format).optRank(RANK)
                .optOptim(Optim.ADAMW_TORCH).optRecompute(policy.mode()).optKeptProducts(policy.kept())
                .optSkippedLayers(policy.skippedLayers())
                .optHeldWeights(heldWeightBytes).optBatch(w.batch()).optSeq(w.seq())
                .optDevice(MemoryPlanner.Device.CPU).build().plan().hostBytes();
    }

    /** The column names of {@link #row}. */
    static String header() {
        return String.format(Locale.ROOT, "%-60s %9s %9s %8s %8s %8s %8s %11s %11s %8s %8s", "configuration", "step ms",
                "tokens/s", "GFLOP/s", "peak", "of peak", "6N/peak", "peak RSS MB", "model MB", "plan MB", "RSS/plan");
    }

    /** One configuration's figures. */
    static String row(Result r) {
        return String.format(Locale.ROOT, "%-60s %9.0f %9.1f %8.1f %8.1f %8.2f %8.2f %11.0f %11.0f %8.0f %8.3f",
                r.label(), r.stepMs(), r.tokensPerSecond(), r.gflops(), r.peakGflops(), r.ofPeak(), r.ofPeak6n(),
                r.hwm() / 1e6,
                r.modelBytes() / 1e6, r.plannedBytes() / 1e6, r.ofPlan());
    }

    /** The child: loads the base in {@code format}, attaches LoRA, trains and reports as {@code result.key=value}. */
    private static void train(Path dir, int batch, int seq, RecomputePolicy policy, long heldWeightBytes, int warmup,
            int steps, BaseFormat format) throws Exception {
        try (NDManager manager = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().optFormat(format).build().load(dir, manager);
                LoraAdapters lora = LoraAdapters.attach(model, LoraSettings.defaults(RANK), manager, 1)) {
            double stepMs;
            try (AdamW adam = AdamW.builder().build()) {
                stepMs = medianStepMs(model, lora, randomBatch(model.config().vocabSize(), batch, seq), policy,
                        heldWeightBytes, warmup, steps, null, adam);
            }
            ChildJvm.result("hwm", ProcessMemory.statusBytes("VmHWM"));
            ChildJvm.result("stepUs", Math.round(stepMs * 1e3));
            ChildJvm.result("modelBytes", model.bytes());
            ChildJvm.result("peakMflops", Math.round(MatmulPeak.medianGflops(manager, DataType.FLOAT32, PEAK_RUNS) * 1e3));
        }
    }

    /**
     * The median time of {@code steps} QLoRA steps after {@code warmup} ones on the adapters {@code lora} attached
     * to {@code model}: {@link TrainStep#accumulate} over {@code batch}, {@code adam}, zeroing; the top blocks' weights
     * held within {@code heldWeightBytes}; with a {@code scaler} (a float16 model; else null) the steps run under its
     * loss scale, as training does. In a paced child the timed steps wait for the parent's word ({@link
     * ChildJvm#awaitTurn}), and so does what comes after them.
     */
    static double medianStepMs(CausalLM model, LoraAdapters lora, Batch batch, RecomputePolicy policy,
            long heldWeightBytes, int warmup, int steps, LossScaler scaler, AdamW adam) {
        List<Parameter> params = new ArrayList<>();
        lora.parameters().forEach((name, value) -> params.add(new Parameter(name, value)));
        TrainStep step = TrainStep.builder(model).optRecompute(policy.recomputes()).optKeptProducts(policy.kept())
                .optSkippedLayers(policy.skippedLayers())
                .optHeldWeightBytes(heldWeightBytes).optReleaseHeap(ProcessOverhead.of("cpu").releasesHeap()).build();
        double[] ms = new double[steps];
        for (int i = -warmup; i < steps; i++) {
            if (i >= 0) {
                ChildJvm.awaitTurn();
            }
            long start = System.nanoTime();
            step.accumulate(List.of(batch), i + warmup, scaler == null ? 1f : scaler.scale());
            if (scaler == null || scaler.unscaleAndUpdate(params)) {
                adam.step(params, 1e-4);
            }
            Gradients.zero(params);
            if (i >= 0) {
                long nanos = System.nanoTime() - start;
                ms[i] = nanos / 1e6;
                ChildJvm.stepTaken(nanos);
            }
        }
        ChildJvm.awaitTurn();
        return ForwardBenchmark.median(ms);
    }

    /** Random token ids, every token real and labelled, positions 0..seq-1 in each row. */
    static Batch randomBatch(int vocab, int rows, int seq) {
        long[] ids = ForwardBenchmark.randomIds(vocab, rows * seq);
        long[] mask = new long[ids.length];
        long[] positions = new long[ids.length];
        for (int i = 0; i < ids.length; i++) {
            mask[i] = 1;
            positions[i] = i % seq;
        }
        return new Batch(rows, seq, ids, mask, positions, ids.clone());
    }
}
