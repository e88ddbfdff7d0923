package io.qlora4j.bench;

import io.qlora4j.model.format.AqlmFormat;
import io.qlora4j.model.format.AwqFormat;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.FormatKeys;
import io.qlora4j.model.format.GptqFormat;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.quant.aqlm.AqlmScheme;
import io.qlora4j.trainer.plan.RecomputePolicy;
import java.util.ArrayList;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;

/**
 * The end-to-end suite ({@code ./qlora4j bench [quick|full|formats]}): runs the benchmarks of this package and prints
 * one table of ratios, each against a baseline measured in the same run, each row naming the machine. {@code quick}
 * uses a ~20M model, the ~100M load and short runs (about a minute); {@code full} uses the issue's sizes (the ~100M
 * forward and training configs and step profile, the 1.1B training and load, the ~100M step under each allocator
 * profile, and the side by side with the Python stack where an interpreter with PyTorch is at hand) and adds the
 * base-format rows; {@code formats} runs only
 * those: every on-the-fly format's quantize throughput against a copy, the 1.1B checkpoint's HQQ 4-bit quantize time
 * against its NF4 time, and the ~100M training step over every format (and two random AQLM bases) against NF4's.
 */
public final class BenchSuite {
    private static final Workload SMALL = new Workload("~20M", BenchModels.small(), 1, 128);
    private static final Workload HUNDRED_M = new Workload("~100M", BenchModels.hundredMillion(), 1, 256);
    private static final Workload TINY_LLAMA = new Workload("TinyLlama-1.1B", BenchModels.tinyLlama(), 1, 128);
    private static final Workload HUNDRED_M_TRAIN = new Workload(HUNDRED_M.name(), HUNDRED_M.config(), 4, 256);
    /** Rounds of the side-by-side check ({@link SideBySideBenchmark}): one step of each contender per round. */
    private static final int SIDE_BY_SIDE_ROUNDS = 3;
    private static final Formats ISSUE_FORMATS = new Formats(1 << 24, TINY_LLAMA, HUNDRED_M_TRAIN, 3,
            List.of(new AqlmFormat(new AqlmScheme(2, 8, 8, 1)), new AqlmFormat(new AqlmScheme(1, 16, 8, 1)),
                    new GptqFormat(4, 128, false, true, true), new GptqFormat(4, 128, true, true, true),
                    new AwqFormat(128)));
    private static final Sizes QUICK = new Sizes("quick", true, 1 << 22, 1, SMALL,
            List.of(new Workload(SMALL.name(), SMALL.config(), 2, 128)), 3, HUNDRED_M, 8, 10, null);
    private static final Sizes FULL = new Sizes("full", true, 1 << 24, 3, HUNDRED_M,
            List.of(HUNDRED_M_TRAIN, TINY_LLAMA), 3, TINY_LLAMA, 8, 10, ISSUE_FORMATS);
    private static final Sizes FORMATS = new Sizes("formats", false, 1 << 24, 3, HUNDRED_M, List.of(), 3, TINY_LLAMA,
            8, 10, ISSUE_FORMATS);

    private BenchSuite() {}

    /**
     * The sizes of one suite.
     *
     * @param name {@code quick}, {@code full} or {@code formats}
     * @param general whether the suite runs the general rows (quantize NF4, forward, training, load, paging)
     * @param quantizeElements floats per quantized tensor
     * @param jmhIterations measured one-second JMH iterations (after one warm-up)
     * @param forward the forward benchmark's workload
     * @param train the training workloads (each with recompute on and off)
     * @param trainSteps measured training steps (after one warm-up)
     * @param load the model whose NF4+DQ load is measured (its batch and seq unused)
     * @param optimizerPairs LoRA A/B pairs of [16, 4096] for the paging measurement
     * @param optimizerSteps its measured steps
     * @param formats the base-format rows' sizes, or null for none
     */
    private record Sizes(String name, boolean general, int quantizeElements, int jmhIterations, Workload forward,
            List<Workload> train, int trainSteps, Workload load, int optimizerPairs, int optimizerSteps,
            Formats formats) {}

    /**
     * The sizes of the base-format rows.
     *
     * @param quantizeElements floats per quantized tensor
     * @param model the checkpoint quantized whole to NF4+DQ and HQQ 4-bit (its batch and seq unused)
     * @param train the workload trained over every format (recompute on)
     * @param trainSteps measured training steps (after one warm-up)
     * @param prequantized the formats of the random pre-quantized bases trained over (AQLM, GPTQ, AWQ)
     */
    private record Formats(int quantizeElements, Workload model, Workload train, int trainSteps,
            List<BaseFormat> prequantized) {}

    /** One line of the table: what is divided by what, the ratio, and the two figures behind it. */
    private record Row(String ratio, double value, String detail) {}

    /** Runs the suite named by the first argument ({@code quick} when absent) and prints the table. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        String name = args.length == 0 ? QUICK.name() : args[0];
        Sizes sizes = List.of(QUICK, FULL, FORMATS).stream().filter(s -> s.name().equals(name)).findFirst().orElse(null);
        if (sizes == null || args.length > 1) {
            System.err.println("bench: expected one suite name, quick, full or formats, got " + String.join(" ", args));
            System.exit(2);
        }
        long start = System.nanoTime();
        System.out.println("qlora4j bench " + sizes.name());
        System.out.println(Machine.describe());
        System.out.println("libtorch intra-op threads: " + System.getProperty("ai.djl.pytorch.num_threads", "default")
                + " (-Dai.djl.pytorch.num_threads=N)");
        List<Row> rows = new ArrayList<>();
        if (sizes.general()) {
            rows.add(quantize(sizes));
            rows.addAll(forward(sizes));
            rows.addAll(train(sizes));
            rows.addAll(profile(sizes));
            rows.add(load(sizes));
            rows.add(paging(sizes));
            if (sizes == FULL) {
                rows.add(trainCommand());
                rows.addAll(allocator(sizes));
                rows.addAll(sideBySide(sizes));
            }
        }
        if (sizes.formats() != null) {
            rows.addAll(quantizeFormats(sizes));
            rows.addAll(quantizeModel(sizes.formats().model()));
            rows.addAll(trainFormats(sizes.formats()));
        }
        System.out.printf(Locale.ROOT, "%nqlora4j bench %s: ratios against baselines measured in the same run (%.0f s)%n",
                sizes.name(), (System.nanoTime() - start) / 1e9);
        String machine = Machine.name();
        System.out.printf(Locale.ROOT, "%-56s %7s  %-50s  %s%n", "ratio", "value", "figures", "machine");
        for (Row r : rows) {
            System.out.printf(Locale.ROOT, "%-56s %7.2f  %-50s  %s%n", r.ratio(), r.value(), r.detail(), machine);
        }
    }

    private static Row quantize(Sizes s) throws Exception {
        System.out.println("\n-- quantize (JMH, forked JVM)");
        Map<String, Double> gbs = QuantizeBenchmark.measure(new OptionsBuilder()
                .include(QuantizeBenchmark.class.getName() + "\\.(copy|quantizeNf4Dq)$")
                .param("size", String.valueOf(s.quantizeElements()))
                .warmupIterations(1).warmupTime(TimeValue.seconds(1))
                .measurementIterations(s.jmhIterations()).measurementTime(TimeValue.seconds(1))
                .timeUnit(TimeUnit.SECONDS).verbosity(VerboseMode.SILENT));
        double quantize = gbs.get("quantizeNf4Dq");
        double copy = gbs.get("copy");
        return new Row("quantize NF4+DQ GB/s / copy GB/s", quantize / copy, String.format(Locale.ROOT,
                "%.2f / %.2f GB/s, %dM floats", quantize, copy, s.quantizeElements() >> 20));
    }

    /** Every menu format's {@code quantize} of one tensor against the copy (JMH, one forked JVM per format). */
    private static List<Row> quantizeFormats(Sizes s) throws Exception {
        int elements = s.formats().quantizeElements();
        System.out.println("\n-- quantize one [" + (elements / 4096) + ", 4096] tensor in every format (JMH, forked JVMs)");
        Map<String, Double> gbs = QuantizeBenchmark.measure(new OptionsBuilder()
                .include(QuantizeBenchmark.class.getName() + "\\.(copy|quantizeFormat)$")
                .param("size", String.valueOf(elements))
                .param("format", BenchFormats.menu().stream().map(BenchFormats::id).toArray(String[]::new))
                .warmupIterations(1).warmupTime(TimeValue.seconds(1))
                .measurementIterations(s.jmhIterations()).measurementTime(TimeValue.seconds(1))
                .timeUnit(TimeUnit.SECONDS).verbosity(VerboseMode.SILENT));
        double copy = gbs.get("copy");
        List<Row> rows = new ArrayList<>();
        for (BaseFormat f : BenchFormats.menu()) {
            double rate = gbs.get(QuantizeBenchmark.key(f));
            rows.add(new Row("quantize GB/s / copy GB/s, " + f.describe(), rate / copy, String.format(Locale.ROOT,
                    "%.3f / %.2f GB/s, %dM floats", rate, copy, elements >> 20)));
        }
        return rows;
    }

    /** A whole random checkpoint through {@code quantize}: HQQ 4-bit against NF4+DQ, NF4+DQ against a file copy. */
    private static List<Row> quantizeModel(Workload model) throws Exception {
        System.out.println("\n-- quantize a random " + model.name() + " checkpoint (bf16) to NF4+DQ and HQQ 4-bit");
        BaseFormat hqq4 = BaseFormats.fromKeys(new FormatKeys("hqq", 4, Map.of()));
        Map<String, Double> seconds = QuantizeBenchmark.model(model.config(), List.of(BaseFormats.QLORA, hqq4));
        double nf4 = seconds.get(BaseFormats.QLORA.describe());
        double hqq = seconds.get(hqq4.describe());
        return List.of(
                new Row("quantize time, HQQ 4-bit / NF4+DQ, " + model.name() + " (target < 10)", hqq / nf4,
                        String.format(Locale.ROOT, "%.1f / %.1f s", hqq, nf4)),
                new Row("quantize time, NF4+DQ / file copy, " + model.name(), nf4 / seconds.get("copy"),
                        String.format(Locale.ROOT, "%.1f / %.1f s", nf4, seconds.get("copy"))));
    }

    /** The training step over every format (and the AQLM bases) against the step over NF4+DQ. */
    private static List<Row> trainFormats(Formats f) throws Exception {
        Workload w = f.train();
        System.out.println("\n-- training " + w.name() + " b" + w.batch() + "x" + w.seq() + " over every base format ("
                + BenchModels.describe(w.config()) + ")");
        System.out.println(TrainBenchmark.header());
        List<TrainBenchmark.FormatStep> results = TrainBenchmark.measureFormats(w, BenchFormats.menu(),
                f.prequantized(), 1, f.trainSteps());
        TrainBenchmark.Result nf4 = results.get(0).result();
        List<Row> rows = new ArrayList<>();
        for (TrainBenchmark.FormatStep step : results.subList(1, results.size())) {
            TrainBenchmark.Result r = step.result();
            rows.add(new Row("step time over " + r.format() + " / NF4+DQ, " + w.name(), step.overNf4(),
                    String.format(Locale.ROOT, "the median of %d lockstep rounds; median steps %.0f / %.0f ms",
                            f.trainSteps(), r.stepMs(), nf4.stepMs())));
        }
        return rows;
    }

    private static List<Row> forward(Sizes s) throws Exception {
        Workload w = s.forward();
        System.out.println("\n-- forward " + w.name() + " (" + BenchModels.describe(w.config()) + "; batch " + w.batch()
                + " x " + w.seq() + ")");
        ForwardBenchmark.Result r = ForwardBenchmark.measure(w.config(), w.batch(), w.seq());
        List<Row> rows = new ArrayList<>();
        for (String weights : List.of(ForwardBenchmark.DENSE, ForwardBenchmark.NF4)) {
            rows.add(new Row("forward GFLOP/s / matmul peak, " + weights + ", " + w.name(), r.ofPeak(weights), String.format(Locale.ROOT, "%.1f / %.1f GFLOP/s",
                    r.ofPeak(weights) * r.peakGflops(), r.peakGflops())));
        }
        double nf4 = r.forwardMs(ForwardBenchmark.NF4);
        double dense = r.forwardMs(ForwardBenchmark.DENSE);
        rows.add(new Row("NF4 forward step time / dense, " + w.name(), nf4 / dense,
                String.format(Locale.ROOT, "%.1f / %.1f ms", nf4, dense)));
        return rows;
    }

    private static List<Row> train(Sizes s) throws Exception {
        List<Row> rows = new ArrayList<>();
        for (Workload w : s.train()) {
            System.out.println("\n-- training " + w.name() + " (" + BenchModels.describe(w.config()) + ")");
            for (TrainBenchmark.Result r : TrainBenchmark.measure(w, 1, s.trainSteps())) {
                System.out.println(TrainBenchmark.row(r));
                rows.add(new Row("training GFLOP/s / matmul peak, " + r.label(), r.ofPeak(), String.format(Locale.ROOT,
                        "%.1f / %.1f GFLOP/s, %.0f tokens/s, RSS %.0f MB", r.gflops(), r.peakGflops(),
                        r.tokensPerSecond(), r.hwm() / 1e6)));
                rows.add(new Row("training tokens/s in 6N accounting / matmul peak, " + r.label(), r.ofPeak6n(),
                        String.format(Locale.ROOT, "%.0f tokens/s, step %.0f ms (issue 20: >= 0.95, moonshot 1.15)",
                                r.tokensPerSecond(), r.stepMs())));
                rows.add(new Row("peak RSS / planned peak, " + r.label(), r.ofPlan(), String.format(Locale.ROOT,
                        "%.0f / %.0f MB (qlora4j inspect's plan)", r.hwm() / 1e6, r.plannedBytes() / 1e6)));
            }
        }
        return rows;
    }

    private static Row trainCommand() throws Exception {
        System.out.println("\n-- qlora4j train of the ~100M model (4 x 256 packed, r 16, recompute, paged_adamw_32bit),"
                + " VmHWM read from outside");
        TrainCommandMemory.Result r = TrainCommandMemory.measure(4);
        return new Row("train peak RSS / planned peak, ~100M b4x256 paged", (double) r.hwm() / r.planned(),
                String.format(Locale.ROOT, "%.0f / %.0f MB", r.hwm() / 1e6, r.planned() / 1e6));
    }

    /**
     * The first training workload with every product kept (issue 20's fastest recompute) under each of the launcher's
     * allocator profiles ({@code QLORA4J_ALLOCATOR}), a fresh JVM each: what each buys and costs against the default.
     */
    private static List<Row> allocator(Sizes s) throws Exception {
        Workload w = s.train().get(0);
        RecomputePolicy policy = TrainBenchmark.selective(w, null);
        String label = w.name() + " b" + w.batch() + "x" + w.seq() + " " + TrainBenchmark.label(policy);
        System.out.println("\n-- allocator profiles (QLORA4J_ALLOCATOR), " + label + ", a fresh JVM each, 2 warm-up"
                + " steps, median of " + s.trainSteps());
        Map<String, TrainBenchmark.Result> results = new LinkedHashMap<>();
        try (RandomCheckpoint checkpoint = RandomCheckpoint.write(w.config(), DType.BF16, 3)) {
            for (Map.Entry<String, Map<String, String>> profile : ChildJvm.ALLOCATOR_PROFILES.entrySet()) {
                TrainBenchmark.Result r = TrainBenchmark.child(w, checkpoint, BaseFormats.QLORA, policy, 2,
                        s.trainSteps(), profile.getValue());
                System.out.printf(Locale.ROOT, "%s: step %.0f ms, %.1f tokens/s, 6N/peak %.2f, peak RSS %.0f MB%n",
                        profile.getKey(), r.stepMs(), r.tokensPerSecond(), r.ofPeak6n(), r.hwm() / 1e6);
                results.put(profile.getKey(), r);
            }
        }
        String base = results.keySet().iterator().next();
        TrainBenchmark.Result b = results.get(base);
        List<Row> rows = new ArrayList<>();
        results.forEach((name, r) -> {
            if (r != b) {
                String ratio = "QLORA4J_ALLOCATOR " + name + " / " + base + ", " + label;
                rows.add(new Row("step time, " + ratio, r.stepMs() / b.stepMs(),
                        String.format(Locale.ROOT, "%.0f / %.0f ms", r.stepMs(), b.stepMs())));
                rows.add(peakRssRow(ratio, r.hwm(), b.hwm()));
            }
        });
        return rows;
    }

    /**
     * Issue 20's check on the first training workload, {@value #SIDE_BY_SIDE_ROUNDS} rounds in lockstep: qlora4j's
     * steps against the Python stack's dense
     * LoRA step ({@link SideBySideBenchmark}); none where no Python interpreter with PyTorch is at hand, saying why.
     */
    private static List<Row> sideBySide(Sizes s) throws Exception {
        Workload w = s.train().get(0);
        System.out.println("\n-- side by side with the Python stack (" + PythonStep.interpreter() + " "
                + PythonStep.SCRIPT + "), " + w.name() + " b" + w.batch() + "x" + w.seq() + ", a fresh process each, "
                + SIDE_BY_SIDE_ROUNDS + " rounds of one step each in turn");
        String missing = PythonStep.missing();
        if (missing != null) {
            System.out.println("skipped: " + missing);
            return List.of();
        }
        List<SideBySideBenchmark.Side> sides = SideBySideBenchmark.measure(w, SIDE_BY_SIDE_ROUNDS);
        System.out.print(SideBySideBenchmark.table(w, sides));
        SideBySideBenchmark.Side python = sides.get(SideBySideBenchmark.PYTHON);
        List<Row> rows = new ArrayList<>();
        for (SideBySideBenchmark.Side side : sides.subList(1, sides.size())) {
            String ratio = side.label() + " / " + python.label() + ", " + w.name();
            rows.add(new Row("tokens/s, " + ratio + " (issue 20: QLoRA >= 1, aim 1.2)",
                    ForwardBenchmark.median(python.timeOver(side)), String.format(Locale.ROOT,
                            "the median of the rounds' ratios; median steps %.0f / %.0f ms",
                            side.stepMs(), python.stepMs())));
            rows.add(peakRssRow(ratio, side.hwm(), python.hwm()));
        }
        return rows;
    }

    /** The row {@code peak RSS, <ratio>}: {@code hwm} over {@code baseHwm}, with both in MB. */
    private static Row peakRssRow(String ratio, long hwm, long baseHwm) {
        return new Row("peak RSS, " + ratio, (double) hwm / baseHwm,
                String.format(Locale.ROOT, "%.0f / %.0f MB", hwm / 1e6, baseHwm / 1e6));
    }

    /**
     * The step profile (issue 20) of the first training workload: the 6N matmul-only bound over each step, NF4 over
     * dense, NF4 with every block held over NF4.
     */
    private static List<Row> profile(Sizes s) throws Exception {
        Workload w = s.train().get(0);
        System.out.println("\n-- step profile " + w.name() + " b" + w.batch() + "x" + w.seq()
                + " recompute, dense, NF4+DQ and NF4+DQ with every block held");
        List<StepProfile.Profile> profiles = StepProfile.measure(w);
        System.out.print(StepProfile.table(profiles));
        List<Row> rows = new ArrayList<>();
        for (StepProfile.Profile p : profiles) {
            rows.add(new Row("6N lower bound / step, " + p.weights() + ", " + w.name() + " b" + w.batch() + "x" + w.seq(),
                    p.lowerBoundMs() / p.stepMs(), String.format(Locale.ROOT, "%.0f / %.0f ms, peak %.1f GFLOP/s",
                            p.lowerBoundMs(), p.stepMs(), p.peakGflops())));
        }
        StepProfile.Profile dense = profiles.get(0);
        StepProfile.Profile nf4 = profiles.get(1);
        StepProfile.Profile held = profiles.get(2);
        rows.add(new Row("NF4 step time / dense, " + w.name() + " b" + w.batch() + "x" + w.seq(),
                nf4.stepMs() / dense.stepMs(), String.format(Locale.ROOT, "%.0f / %.0f ms", nf4.stepMs(),
                        dense.stepMs())));
        rows.add(new Row("NF4 step, every block held / not held, " + w.name() + " b" + w.batch() + "x" + w.seq(),
                held.stepMs() / nf4.stepMs(), String.format(Locale.ROOT, "%.0f / %.0f ms (held_weights_mb)",
                        held.stepMs(), nf4.stepMs())));
        return rows;
    }

    private static Row load(Sizes s) throws Exception {
        System.out.println("\n-- NF4+DQ load of " + s.load().name() + " in a fresh JVM");
        LoadMemoryBenchmark.Result r = LoadMemoryBenchmark.measure(s.load().config());
        return new Row("peak RSS / packed model size, " + s.load().name() + " load", (double) r.hwm() / r.modelBytes(),
                String.format(Locale.ROOT, "%.0f / %.0f MB", r.hwm() / 1e6, r.modelBytes() / 1e6));
    }

    private static Row paging(Sizes s) {
        System.out.println("\n-- optimizer paging (paged_adamw_32bit at a quarter of its state)");
        OptimizerBenchmark.Paging r = OptimizerBenchmark.paging(s.optimizerPairs(), s.optimizerSteps());
        return new Row("optimizer paging GB/s / copy GB/s", r.pagingGbs() / r.copyGbs(),
                String.format(Locale.ROOT, "%.2f / %.2f GB/s, %d MiB state", r.pagingGbs(), r.copyGbs(),
                        r.stateBytes() >> 20));
    }
}
