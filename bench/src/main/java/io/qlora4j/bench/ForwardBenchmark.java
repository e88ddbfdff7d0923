package io.qlora4j.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import io.qlora4j.model.FrozenLinear;
import io.qlora4j.model.llama.LlamaBlock;
import io.qlora4j.model.llama.LlamaConfig;
import io.qlora4j.model.llama.LlamaLoader;
import io.qlora4j.model.llama.LlamaModel;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.quant.BlockwiseQuantizer;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;

/**
 * Forward-pass throughput of a ~100M-parameter Llama (batch 1, sequence 256) with dense float32 and
 * NF4+DQ weights, against the float32 matmul peak of this machine measured in the same run. A random bf16
 * checkpoint is written to a temporary directory and loaded through {@link LlamaLoader} (the real path),
 * then deleted. Each timing is the median of {@value #RUNS} runs after {@value #WARMUP} warm-ups; the
 * time of each op class (block projections, lm_head, the rest) is also measured on its own so that a
 * shortfall can be traced.
 */
public final class ForwardBenchmark {
    private static final int BATCH = 1;
    private static final int SEQ = 256;
    private static final int PEAK_N = 2048;
    private static final int WARMUP = 2;
    private static final int RUNS = 5;
    private static final List<String> ATTENTION = LlamaBlock.LINEAR_NAMES.subList(0, 4);
    private static final List<String> MLP = LlamaBlock.LINEAR_NAMES.subList(4, 7);

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
                RandomCheckpoint checkpoint = RandomCheckpoint.write(config, DType.BF16, 42)) {
            System.out.println("libtorch intra-op threads: " + JniUtils.getNumThreads()
                    + " (-Dai.djl.pytorch.num_threads=N changes it)");
            NDArray ids = manager.create(randomIds(config.vocabSize()), new Shape(BATCH, SEQ));
            Result dense = measure("dense fp32", LlamaLoader.builder().build(), checkpoint, ids, manager);
            Result nf4 = measure("NF4+DQ", LlamaLoader.builder()
                    .optQuantizer(BlockwiseQuantizer.builder().build()).build(), checkpoint, ids, manager);
            report(Counts.of(config), dense, nf4);
        }
    }

    /** What one weight format achieved. */
    private record Result(String name, double loadSeconds, long bytes, double peakGflops, double forwardMs,
            double attentionProjMs, double mlpProjMs, double lmHeadMs) {}

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

    /** Median GFLOP/s of a warmed-up square float32 matMul. */
    private static double matmulPeak(NDManager manager) {
        try (NDManager m = manager.newSubManager()) {
            NDArray a = m.randomNormal(new Shape(PEAK_N, PEAK_N));
            NDArray b = m.randomNormal(new Shape(PEAK_N, PEAK_N));
            double ms = medianMs(() -> a.matMul(b).close());
            return 2.0 * PEAK_N * PEAK_N * PEAK_N / (ms * 1e6);
        }
    }

    private static Result measure(String name, LlamaLoader loader, RandomCheckpoint checkpoint, NDArray ids,
            NDManager manager) throws Exception {
        long start = System.nanoTime();
        try (NDManager m = manager.newSubManager(); LlamaModel model = loader.load(checkpoint.dir(), m)) {
            double loadSeconds = (System.nanoTime() - start) / 1e9;
            double peak = matmulPeak(m);
            double forward = medianMs(() -> model.forward(ids, null).close());
            Map<Long, NDArray> inputs = new HashMap<>();
            double attention = medianMs(() -> projections(model, ATTENTION, inputs, m));
            double mlp = medianMs(() -> projections(model, MLP, inputs, m));
            double head = medianMs(() -> model.lmHead().forward(input(inputs, model.lmHead(), m)).close());
            return new Result(name, loadSeconds, model.bytes(), peak, forward, attention, mlp, head);
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

    private static double medianMs(Runnable body) {
        for (int i = 0; i < WARMUP; i++) {
            body.run();
        }
        double[] ms = new double[RUNS];
        for (int i = 0; i < RUNS; i++) {
            long t = System.nanoTime();
            body.run();
            ms[i] = (System.nanoTime() - t) / 1e6;
        }
        Arrays.sort(ms);
        return ms[RUNS / 2];
    }

    private static int[] randomIds(int vocab) {
        Random random = new Random(7);
        int[] ids = new int[BATCH * SEQ];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = random.nextInt(vocab);
        }
        return ids;
    }

    private static void report(Counts n, Result dense, Result nf4) {
        System.out.printf(Locale.ROOT, "parameters: %.1fM total, %.1fM in matmuls (%.1fM in blocks + %.1fM lm_head)%n",
                n.params / 1e6, (n.blockMatmulParams + n.headParams) / 1e6, n.blockMatmulParams / 1e6,
                n.headParams / 1e6);
        System.out.printf(Locale.ROOT, "FLOP per forward = 2 * matmul_params * tokens + 4 * layers * seq^2 * hidden"
                + " * batch = %.2f GFLOP (tokens = batch * seq = %d)%n", n.flop / 1e9, BATCH * SEQ);
        System.out.printf(Locale.ROOT, "peak = float32 DJL matMul %d^3 measured just before each forward series;"
                + " every time is the median of %d runs after %d warm-ups%n%n", PEAK_N, RUNS, WARMUP);
        System.out.println("weights      load s  weights MB  forward ms  tokens/s  GFLOP/s  peak GFLOP/s  of peak  of dense");
        for (Result r : List.of(dense, nf4)) {
            double gflops = n.flop / (r.forwardMs * 1e6);
            System.out.printf(Locale.ROOT, "%-11s %7.1f %11.1f %11.1f %9.1f %8.1f %13.1f %8.2f %9.2f%n", r.name,
                    r.loadSeconds, r.bytes / 1e6, r.forwardMs, BATCH * SEQ / (r.forwardMs / 1e3), gflops,
                    r.peakGflops, gflops / r.peakGflops, dense.forwardMs / r.forwardMs);
        }
        System.out.println();
        System.out.println("time per forward by op class, ms (each class timed on its own; rest = forward - the"
                + " three: attention scores, norms, RoPE, SiLU, embedding)");
        System.out.println("weights      q/k/v/o proj  gate/up/down proj  lm_head     rest");
        for (Result r : List.of(dense, nf4)) {
            System.out.printf(Locale.ROOT, "%-11s %13.1f %18.1f %8.1f %8.1f%n", r.name, r.attentionProjMs,
                    r.mlpProjMs, r.lmHeadMs, r.forwardMs - r.attentionProjMs - r.mlpProjMs - r.lmHeadMs);
        }
        double denseOfPeak = n.flop / (dense.forwardMs * 1e6) / dense.peakGflops;
        double nf4OfDense = dense.forwardMs / nf4.forwardMs;
        System.out.printf(Locale.ROOT, "%ntargets: dense >= 0.50 of peak: %.2f %s; NF4 >= 0.70 of dense: %.2f %s%n",
                denseOfPeak, denseOfPeak >= 0.5 ? "MET" : "MISSED", nf4OfDense, nf4OfDense >= 0.7 ? "MET" : "MISSED");
    }
}
