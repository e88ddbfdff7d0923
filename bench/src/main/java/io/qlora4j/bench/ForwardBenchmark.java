package io.qlora4j.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.safetensors.DType;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.function.ToDoubleFunction;

/**
 * Forward-pass throughput of a ~100M-parameter Llama (batch 1, sequence 256) with dense float32 and
 * NF4+DQ weights, against the float32 matmul peak of this machine measured in the same run. A random bf16
 * checkpoint is written to a temporary directory and loaded through {@link ModelLoader} (the real path),
 * then deleted. The time of each op class (block projections, lm_head, the rest) is also measured on its
 * own so that a shortfall can be traced. All measurements run interleaved, one of each per round, so that
 * load from other processes hits them alike; each figure is the median of {@value #RUNS} rounds after
 * {@value #WARMUP} warm-up rounds.
 */
public final class ForwardBenchmark {
    private static final int WARMUP = 2;
    private static final int RUNS = 5;
    private static final String PEAK = "peak";
    private static final String FORWARD = "forward";
    private static final String ATTENTION_PROJ = "q/k/v/o";
    private static final String MLP_PROJ = "gate/up/down";
    private static final String LM_HEAD = "lm_head";
    /** The name of the dense float32 weights in {@link Result#weights}. */
    static final String DENSE = "dense fp32";
    /** The name of the NF4+DQ weights in {@link Result#weights}. */
    static final String NF4 = "NF4+DQ";

    private ForwardBenchmark() {}

    /** Runs the benchmark on the ~100M config (batch 1 x seq 256) and prints the machine, the measured values and their ratios. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        DecoderConfig config = BenchModels.hundredMillion();
        System.out.println("ForwardBenchmark: Llama forward pass, batch 1 x seq 256, random bf16 checkpoint loaded"
                + " through ModelLoader");
        System.out.println(Machine.describe());
        System.out.println("config: " + BenchModels.describe(config) + ", untied lm_head");
        report(measure(config, 1, 256));
    }

    /**
     * The measured values: the medians in ms of the peak product ({@code "peak"}) and, per weights name, the
     * forward pass and each op class ({@code name + "forward"}, {@code "q/k/v/o"}, {@code "gate/up/down"},
     * {@code "lm_head"}).
     *
     * @param flops the counts of the config at the measured shape
     * @param ms the median times by case
     * @param weights the loaded models, dense first
     */
    record Result(ModelFlops flops, Map<String, Double> ms, List<Weights> weights) {
        /** The float32 matmul peak in GFLOP/s. */
        double peakGflops() {
            return MatmulPeak.gflops(ms.get(PEAK));
        }

        /** The median forward time of the named weights, ms. */
        double forwardMs(String weights) {
            return ms.get(weights + FORWARD);
        }

        /** Forward GFLOP/s of the named weights over the peak. */
        double ofPeak(String weights) {
            return flops.forward() / (forwardMs(weights) * 1e6) / peakGflops();
        }
    }

    /** A model as loaded from the checkpoint: its name, load time and bytes held. */
    record Weights(String name, double loadSeconds, long bytes) {}

    /**
     * Writes a random bf16 checkpoint of {@code config}, loads it dense and NF4+DQ through {@link ModelLoader}
     * and times the forward pass at {@code batch} x {@code seq}, interleaved with the peak and the op classes.
     */
    static Result measure(DecoderConfig config, int batch, int seq) throws Exception {
        try (NDManager manager = NDManager.newBaseManager();
                RandomCheckpoint checkpoint = RandomCheckpoint.write(config, DType.BF16, 42);
                Loaded dense = Loaded.load(DENSE, ModelLoader.builder().build(), checkpoint, manager);
                Loaded nf4 = Loaded.load(NF4, ModelLoader.builder()
                        .optFormat(BaseFormats.QLORA).build(), checkpoint, manager);
                MatmulPeak peak = new MatmulPeak(manager)) {
            NDArray ids = manager.create(randomIds(config.vocabSize(), batch * seq), new Shape(batch, seq));
            Map<Long, NDArray> inputs = new HashMap<>();
            Shape rows = new Shape(batch, seq);
            Map<String, Runnable> cases = new LinkedHashMap<>();
            cases.put(PEAK, peak::runMs);
            for (Loaded l : List.of(dense, nf4)) {
                CausalLM model = l.model;
                cases.put(l.name + FORWARD, () -> model.forward(ids, null).close());
                cases.put(l.name + ATTENTION_PROJ, () -> projections(model, "self_attn.", inputs, rows, manager));
                cases.put(l.name + MLP_PROJ, () -> projections(model, "mlp.", inputs, rows, manager));
                cases.put(l.name + LM_HEAD,
                        () -> model.lmHead().forward(input(inputs, model.lmHead(), rows, manager)).close());
            }
            return new Result(ModelFlops.of(config, batch, seq), medianMs(cases),
                    List.of(dense.weights(), nf4.weights()));
        }
    }

    /** A model loaded from the checkpoint, with its load time. */
    private record Loaded(String name, CausalLM model, double loadSeconds) implements AutoCloseable {
        static Loaded load(String name, ModelLoader loader, RandomCheckpoint checkpoint, NDManager manager)
                throws ModelException {
            long start = System.nanoTime();
            CausalLM model = loader.load(checkpoint.dir(), manager);
            return new Loaded(name, model, (System.nanoTime() - start) / 1e9);
        }

        Weights weights() {
            return new Weights(name, loadSeconds, model.bytes());
        }

        @Override
        public void close() {
            model.close();
        }
    }

    /** Runs the projections under {@code module} of every block once, on random inputs of the right width. */
    private static void projections(CausalLM model, String module, Map<Long, NDArray> inputs, Shape rows,
            NDManager m) {
        for (int l = 0; l < model.numLayers(); l++) {
            for (String name : model.block(l).linearNames().stream().filter(n -> n.startsWith(module)).toList()) {
                LinearLayer linear = model.block(l).linear(name);
                linear.forward(input(inputs, linear, rows, m)).close();
            }
        }
    }

    /** A random input {@code [batch, seq, in]} for the layer, one per width. */
    private static NDArray input(Map<Long, NDArray> inputs, LinearLayer linear, Shape rows, NDManager m) {
        return inputs.computeIfAbsent(linear.inFeatures(), in -> m.randomNormal(rows.addAll(new Shape(in))));
    }

    /** Runs every case once per round, in order, and returns each case's median time in ms over the measured rounds. */
    private static Map<String, Double> medianMs(Map<String, Runnable> cases) {
        Map<String, double[]> times = new LinkedHashMap<>();
        cases.keySet().forEach(name -> times.put(name, new double[RUNS]));
        for (int round = -WARMUP; round < RUNS; round++) {
            for (Map.Entry<String, Runnable> c : cases.entrySet()) {
                long t = System.nanoTime();
                c.getValue().run();
                if (round >= 0) {
                    times.get(c.getKey())[round] = (System.nanoTime() - t) / 1e6;
                }
            }
        }
        Map<String, Double> medians = new LinkedHashMap<>();
        times.forEach((name, ms) -> medians.put(name, median(ms)));
        return medians;
    }

    /**
     * The median of {@code values}: the middle one, or the mean of the two middle ones of an even count (so that two
     * rounds' ratios of 1.70 and 1.01 read 1.36, not 1.70).
     */
    static double median(double[] values) {
        double[] sorted = values.clone();
        Arrays.sort(sorted);
        int half = sorted.length / 2;
        return sorted.length % 2 == 1 ? sorted[half] : (sorted[half - 1] + sorted[half]) / 2;
    }

    /** The median of {@code figure} over {@code items}, as {@link #median(double[])}. */
    static <T> double median(List<T> items, ToDoubleFunction<T> figure) {
        return median(items.stream().mapToDouble(figure).toArray());
    }

    /** {@code n} random token ids below {@code vocab}, always the same. */
    static long[] randomIds(int vocab, int n) {
        Random random = new Random(7);
        long[] ids = new long[n];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = random.nextInt(vocab);
        }
        return ids;
    }

    private static void report(Result r) {
        ModelFlops n = r.flops();
        Map<String, Double> ms = r.ms();
        System.out.println("libtorch intra-op threads: " + JniUtils.getNumThreads()
                + " (-Dai.djl.pytorch.num_threads=N changes it)");
        System.out.printf(Locale.ROOT, "parameters: %.1fM total, %.1fM in matmuls (%.1fM in blocks + %.1fM lm_head)%n",
                n.params() / 1e6, n.matmulParams() / 1e6, n.blockMatmulParams() / 1e6, n.headParams() / 1e6);
        System.out.printf(Locale.ROOT, "FLOP per forward = 2 * matmul_params * tokens + 4 * layers * seq^2 * hidden"
                + " * batch = %.2f GFLOP (tokens = batch * seq = %d)%n", n.forward() / 1e9, n.tokens());
        System.out.println(MatmulPeak.describe(r.peakGflops()));
        System.out.printf(Locale.ROOT, "every time is the median of %d rounds after %d warm-ups; each round runs every"
                + " measurement once, interleaved%n%n", RUNS, WARMUP);
        System.out.println("weights      load s  weights MB  forward ms  tokens/s  GFLOP/s  of peak  of dense");
        double denseMs = r.forwardMs(DENSE);
        for (Weights w : r.weights()) {
            double forward = r.forwardMs(w.name());
            System.out.printf(Locale.ROOT, "%-11s %7.1f %11.1f %11.1f %9.1f %8.1f %8.2f %9.2f%n", w.name(),
                    w.loadSeconds(), w.bytes() / 1e6, forward, n.tokens() / (forward / 1e3),
                    n.forward() / (forward * 1e6), r.ofPeak(w.name()), denseMs / forward);
        }
        System.out.println();
        System.out.println("time per forward by op class, ms (each class timed on its own; rest = forward - the"
                + " three: attention scores, norms, RoPE, SiLU, embedding)");
        System.out.println("weights      q/k/v/o proj  gate/up/down proj  lm_head     rest");
        for (Weights w : r.weights()) {
            double attention = ms.get(w.name() + ATTENTION_PROJ);
            double mlp = ms.get(w.name() + MLP_PROJ);
            double head = ms.get(w.name() + LM_HEAD);
            System.out.printf(Locale.ROOT, "%-11s %13.1f %18.1f %8.1f %8.1f%n", w.name(), attention, mlp, head,
                    r.forwardMs(w.name()) - attention - mlp - head);
        }
        double denseOfPeak = r.ofPeak(DENSE);
        double nf4OfDense = denseMs / r.forwardMs(NF4);
        System.out.printf(Locale.ROOT, "%ntargets: dense >= 0.50 of peak: %.2f %s; NF4 >= 0.70 of dense: %.2f %s%n",
                denseOfPeak, denseOfPeak >= 0.5 ? "MET" : "MISSED", nf4OfDense, nf4OfDense >= 0.7 ? "MET" : "MISSED");
    }
}
