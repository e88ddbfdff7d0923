package io.qlora4j.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import io.qlora4j.model.FrozenLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.llama.LlamaBlock;
import io.qlora4j.model.llama.LlamaConfig;
import io.qlora4j.model.llama.LlamaLoader;
import io.qlora4j.model.llama.LlamaModel;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.quant.BlockwiseQuantizer;
import java.util.Arrays;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * Forward-pass throughput of a ~100M-parameter Llama (batch 1, sequence 256) with dense float32 and
 * NF4+DQ weights, against the float32 matmul peak of this machine measured in the same run. A random bf16
 * checkpoint is written to a temporary directory and loaded through {@link LlamaLoader} (the real path),
 * then deleted. The time of each op class (block projections, lm_head, the rest) is also measured on its
 * own so that a shortfall can be traced. All measurements run interleaved, one of each per round, so that
 * load from other processes hits them alike; each figure is the median of {@value #RUNS} rounds after
 * {@value #WARMUP} warm-up rounds.
 */
public final class ForwardBenchmark {
    private static final int BATCH = 1;
    private static final int SEQ = 256;
    private static final int PEAK_N = 2048;
    private static final int WARMUP = 2;
    private static final int RUNS = 5;
    private static final List<String> ATTENTION = LlamaBlock.LINEAR_NAMES.subList(0, 4);
    private static final List<String> MLP = LlamaBlock.LINEAR_NAMES.subList(4, 7);
    private static final String PEAK = "peak";
    private static final String FORWARD = "forward";
    private static final String ATTENTION_PROJ = "q/k/v/o";
    private static final String MLP_PROJ = "gate/up/down";
    private static final String LM_HEAD = "lm_head";

    private ForwardBenchmark() {}

    /** Runs the benchmark and prints the machine, the measured values and their ratios. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        LlamaConfig config = LlamaConfig.builder(768, 2048, 12, 12, 32000).optTorchDtype("bfloat16").build();
        System.out.println("ForwardBenchmark: Llama forward pass, batch " + BATCH + " x seq " + SEQ
                + ", random bf16 checkpoint loaded through LlamaLoader");
        System.out.println(Machine.describe());
        System.out.printf(Locale.ROOT, "config: hidden %d, intermediate %d, layers %d, heads %d (kv %d), vocab %d, "
                + "untied lm_head%n", config.hiddenSize(), config.intermediateSize(), config.numHiddenLayers(),
                config.numAttentionHeads(), config.numKeyValueHeads(), config.vocabSize());
        try (NDManager manager = NDManager.newBaseManager();
                RandomCheckpoint checkpoint = RandomCheckpoint.write(config, DType.BF16, 42);
                Loaded dense = Loaded.load("dense fp32", LlamaLoader.builder().build(), checkpoint, manager);
                Loaded nf4 = Loaded.load("NF4+DQ", LlamaLoader.builder()
                        .optQuantizer(BlockwiseQuantizer.builder().build()).build(), checkpoint, manager)) {
            System.out.println("libtorch intra-op threads: " + JniUtils.getNumThreads()
                    + " (-Dai.djl.pytorch.num_threads=N changes it)");
            NDArray ids = manager.create(randomIds(config.vocabSize()), new Shape(BATCH, SEQ));
            NDArray a = manager.randomNormal(new Shape(PEAK_N, PEAK_N));
            Map<Long, NDArray> inputs = new HashMap<>();
            Map<String, Runnable> cases = new LinkedHashMap<>();
            cases.put(PEAK, () -> a.matMul(a).close());
            for (Loaded l : List.of(dense, nf4)) {
                LlamaModel model = l.model;
                cases.put(l.name + FORWARD, () -> model.forward(ids, null).close());
                cases.put(l.name + ATTENTION_PROJ, () -> projections(model, ATTENTION, inputs, manager));
                cases.put(l.name + MLP_PROJ, () -> projections(model, MLP, inputs, manager));
                cases.put(l.name + LM_HEAD, () -> model.lmHead().forward(input(inputs, model.lmHead(), manager)).close());
            }
            report(Counts.of(config), medianMs(cases), dense, nf4);
        }
    }

    /** A model loaded from the checkpoint, with its load time. */
    private record Loaded(String name, LlamaModel model, double loadSeconds) implements AutoCloseable {
        static Loaded load(String name, LlamaLoader loader, RandomCheckpoint checkpoint, NDManager manager)
                throws ModelException {
            long start = System.nanoTime();
            LlamaModel model = loader.load(checkpoint.dir(), manager);
            return new Loaded(name, model, (System.nanoTime() - start) / 1e9);
        }

        @Override
        public void close() {
            model.close();
        }
    }

    /** Parameter and FLOP counts of the config. */
    private record Counts(long params, long blockMatmulParams, long headParams, double flop) {
        static Counts of(LlamaConfig c) {
            long params = 0;
            long blocks = 0;
            for (Map.Entry<String, long[]> e : LlamaLoader.expectedShapes(c).entrySet()) {
                long n = RandomCheckpoint.numel(e.getValue());
                params += n;
                blocks += e.getKey().startsWith("model.layers.") && e.getValue().length == 2 ? n : 0;
            }
            long head = (long) c.hiddenSize() * c.vocabSize();
            double attention = 4.0 * c.numHiddenLayers() * SEQ * SEQ * c.queryDim() * BATCH;
            return new Counts(params, blocks, head, 2.0 * (blocks + head) * BATCH * SEQ + attention);
        }
    }

    /** Runs the named projections of every block once, on random inputs of the right width. */
    private static void projections(LlamaModel model, List<String> names, Map<Long, NDArray> inputs, NDManager m) {
        for (int l = 0; l < model.numLayers(); l++) {
            for (String name : names) {
                FrozenLinear linear = model.block(l).linear(name);
                linear.forward(input(inputs, linear, m)).close();
            }
        }
    }

    /** A random input {@code [batch, seq, in]} for the layer, one per width. */
    private static NDArray input(Map<Long, NDArray> inputs, FrozenLinear linear, NDManager m) {
        return inputs.computeIfAbsent(linear.inFeatures(), in -> m.randomNormal(new Shape(BATCH, SEQ, in)));
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
        times.forEach((name, ms) -> {
            Arrays.sort(ms);
            medians.put(name, ms[RUNS / 2]);
        });
        return medians;
    }

    private static int[] randomIds(int vocab) {
        Random random = new Random(7);
        int[] ids = new int[BATCH * SEQ];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = random.nextInt(vocab);
        }
        return ids;
    }

    private static void report(Counts n, Map<String, Double> ms, Loaded dense, Loaded nf4) {
        double peak = 2.0 * PEAK_N * PEAK_N * PEAK_N / (ms.get(PEAK) * 1e6);
        System.out.printf(Locale.ROOT, "parameters: %.1fM total, %.1fM in matmuls (%.1fM in blocks + %.1fM lm_head)%n",
                n.params / 1e6, (n.blockMatmulParams + n.headParams) / 1e6, n.blockMatmulParams / 1e6,
                n.headParams / 1e6);
        System.out.printf(Locale.ROOT, "FLOP per forward = 2 * matmul_params * tokens + 4 * layers * seq^2 * hidden"
                + " * batch = %.2f GFLOP (tokens = batch * seq = %d)%n", n.flop / 1e9, BATCH * SEQ);
        System.out.printf(Locale.ROOT, "float32 matmul peak: DJL matMul %d^3 = %.1f GFLOP/s%n", PEAK_N, peak);
        System.out.printf(Locale.ROOT, "every time is the median of %d rounds after %d warm-ups; each round runs every"
                + " measurement once, interleaved%n%n", RUNS, WARMUP);
        System.out.println("weights      load s  weights MB  forward ms  tokens/s  GFLOP/s  of peak  of dense");
        double denseMs = ms.get(dense.name + FORWARD);
        for (Loaded l : List.of(dense, nf4)) {
            double forward = ms.get(l.name + FORWARD);
            double gflops = n.flop / (forward * 1e6);
            System.out.printf(Locale.ROOT, "%-11s %7.1f %11.1f %11.1f %9.1f %8.1f %8.2f %9.2f%n", l.name,
                    l.loadSeconds, l.model.bytes() / 1e6, forward, BATCH * SEQ / (forward / 1e3), gflops,
                    gflops / peak, denseMs / forward);
        }
        System.out.println();
        System.out.println("time per forward by op class, ms (each class timed on its own; rest = forward - the"
                + " three: attention scores, norms, RoPE, SiLU, embedding)");
        System.out.println("weights      q/k/v/o proj  gate/up/down proj  lm_head     rest");
        for (Loaded l : List.of(dense, nf4)) {
            double attention = ms.get(l.name + ATTENTION_PROJ);
            double mlp = ms.get(l.name + MLP_PROJ);
            double head = ms.get(l.name + LM_HEAD);
            System.out.printf(Locale.ROOT, "%-11s %13.1f %18.1f %8.1f %8.1f%n", l.name, attention, mlp, head,
                    ms.get(l.name + FORWARD) - attention - mlp - head);
        }
        double denseOfPeak = n.flop / (denseMs * 1e6) / peak;
        double nf4OfDense = denseMs / ms.get(nf4.name + FORWARD);
        System.out.printf(Locale.ROOT, "%ntargets: dense >= 0.50 of peak: %.2f %s; NF4 >= 0.70 of dense: %.2f %s%n",
                denseOfPeak, denseOfPeak >= 0.5 ? "MET" : "MISSED", nf4OfDense, nf4OfDense >= 0.7 ? "MET" : "MISSED");
    }
}
