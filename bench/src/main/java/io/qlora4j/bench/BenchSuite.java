package io.qlora4j.bench;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.runner.options.OptionsBuilder;
import org.openjdk.jmh.runner.options.TimeValue;
import org.openjdk.jmh.runner.options.VerboseMode;

/**
 * The end-to-end suite ({@code ./qlora4j bench [quick|full]}): runs the benchmarks of this package and prints one
 * table of ratios, each against a baseline measured in the same run, each row naming the machine. {@code quick}
 * uses a ~20M model, the ~100M load and short runs (under a minute); {@code full} uses the sizes (the ~100M forward and
 * training configs, the 1.1B training and load; an estimated 6-8 minutes on two cores).
 */
public final class BenchSuite {
    private static final Workload SMALL = new Workload("~20M", BenchModels.small(), 1, 128);
    private static final Workload HUNDRED_M = new Workload("~100M", BenchModels.hundredMillion(), 1, 256);
    private static final Workload TINY_LLAMA = new Workload("TinyLlama-1.1B", BenchModels.tinyLlama(), 1, 128);
    private static final Sizes QUICK = new Sizes("quick", 1 << 22, 1, SMALL,
            List.of(new Workload(SMALL.name(), SMALL.config(), 2, 128)), 3, HUNDRED_M, 8, 10);
    private static final Sizes FULL = new Sizes("full", 1 << 24, 3, HUNDRED_M,
            List.of(new Workload(HUNDRED_M.name(), HUNDRED_M.config(), 4, 256), TINY_LLAMA), 3, TINY_LLAMA, 8, 10);

    private BenchSuite() {}

    /**
     * The sizes of one suite.
     *
     * @param name {@code quick} or {@code full}
     * @param quantizeElements floats per quantized tensor
     * @param jmhIterations measured one-second JMH iterations (after one warm-up)
     * @param forward the forward benchmark's workload
     * @param train the training workloads (each with recompute on and off)
     * @param trainSteps measured training steps (after one warm-up)
     * @param load the model whose NF4+DQ load is measured (its batch and seq unused)
     * @param optimizerPairs LoRA A/B pairs of [16, 4096] for the paging measurement
     * @param optimizerSteps its measured steps
     */
    private record Sizes(String name, int quantizeElements, int jmhIterations, Workload forward,
            List<Workload> train, int trainSteps, Workload load, int optimizerPairs, int optimizerSteps) {}

    /** One line of the table: what is divided by what, the ratio, and the two figures behind it. */
    private record Row(String ratio, double value, String detail) {}

    /** Runs the suite named by the first argument ({@code quick} when absent) and prints the table. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        String name = args.length == 0 ? QUICK.name() : args[0];
        Sizes sizes = name.equals(QUICK.name()) ? QUICK : name.equals(FULL.name()) ? FULL : null;
        if (sizes == null || args.length > 1) {
            System.err.println("bench: expected one suite name, quick or full, got " + String.join(" ", args));
            System.exit(2);
        }
        long start = System.nanoTime();
        System.out.println("qlora4j bench " + sizes.name());
        System.out.println(Machine.describe());
        System.out.println("libtorch intra-op threads: " + System.getProperty("ai.djl.pytorch.num_threads", "default")
                + " (-Dai.djl.pytorch.num_threads=N)");
        List<Row> rows = new ArrayList<>();
        rows.add(quantize(sizes));
        rows.addAll(forward(sizes));
        rows.addAll(train(sizes));
        rows.add(load(sizes));
        rows.add(paging(sizes));
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
            }
        }
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
