package io.qlora4j.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import io.qlora4j.adapters.LoraAdapters;
import io.qlora4j.adapters.LoraLinear;
import io.qlora4j.adapters.LoraSettings;
import io.qlora4j.data.Batch;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.decoder.AttentionContext;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.DecoderBlock;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.optim.AdamW;
import io.qlora4j.optim.Gradients;
import io.qlora4j.optim.Parameter;
import io.qlora4j.trainer.TrainStep;
import io.qlora4j.trainer.plan.ProcessOverhead;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.function.Function;

/**
 * Where the time of one LoRA/QLoRA training step goes (issue 20), per op class, against the matmul-only lower
 * bound ({@code 6 * matmul_params} FLOP per token at the float32 matmul peak measured in the same run).
 *
 * <p>Nothing in the step is instrumented, so a normal run pays nothing. The step's own parts are timed with the
 * real code: the whole step ({@link TrainStep#accumulate} with recompute, then AdamW and zeroing), the same step
 * over a {@link BlocklessModel} (batch upload, context, embedding, loss head and its backward), the batch upload
 * with its context and the embedding alone. The blocks' share is the step's accumulate minus the blockless one.
 * Inside a block each op class runs in isolation on block 0's real layers and the step's real shapes, in the
 * step's recompute pattern (a forward without a graph, the same forward with one, and its backward from an
 * upstream gradient), times the number of layers: the base matmuls (a dense float32 copy of each weight),
 * dequantization (the base layer as stored, minus that matmul), the LoRA path (the adapted layer minus its base),
 * the attention core (scores, mask, softmax, weighted values) and the elementwise work (two RMS norms, RoPE on q and
 * k, the gated activation, two residual adds). What none of these covers is the remainder: JNI calls, scopes,
 * reshapes and the block's own glue. Each round runs every measurement once, interleaved with the peak's
 * 2048^3 product, and each figure is the fastest of the measured rounds: on a machine shared with other work, load
 * only ever adds time, so the minimum is the figure least disturbed by it, for the step, its parts and the peak
 * alike.
 */
public final class StepProfile {
    private static final int RANK = 16;
    private static final int WARMUP = 1;
    private static final int ROUNDS = 3;
    /** The NF4+DQ profile with every block's weights dequantized once per step. */
    static final String HELD = "NF4 held";
    private static final String PEAK = "peak";
    private static final String STEP = "step";
    private static final String ACCUMULATE = "accumulate";
    private static final String BLOCKLESS = "blockless";
    private static final String DATA = "data (batch upload, masks, RoPE tables)";
    private static final String EMBED = "embedding";
    private static final String OPTIMIZER = "optimizer (AdamW + zeroing)";
    private static final String MATMUL = "base projections (matmul)";
    private static final String DEQUANT = "dequantization";
    private static final String LORA = "LoRA matmuls";
    private static final String ATTENTION = "attention (scores, softmax, PV)";
    private static final String ELEMENTWISE = "norms/RoPE/activation/residual";
    private static final String BLOCK = "block";
    private static final String HEAD = "loss head (norm, lm_head, CE, backward)";
    private static final String REMAINDER = "remainder (JNI, scopes, reshapes, glue)";
    /** The rows of the table, in order; their times add up to the step. */
    static final List<String> PARTS = List.of(MATMUL, DEQUANT, LORA, ATTENTION, ELEMENTWISE, HEAD, EMBED, DATA,
            OPTIMIZER, REMAINDER);

    private StepProfile() {}

    /**
     * One configuration's profile.
     *
     * @param weights the base weights' name
     * @param workload the model and batch shape
     * @param stepMs the fastest step time
     * @param parts ms per step by {@link #PARTS} name
     * @param blocksMs the blocks' share of the real step (accumulate minus the blockless accumulate)
     * @param blockMs one block's isolated recompute pattern (forward, forward with graph, backward), ms
     * @param peakGflops the float32 matmul peak measured in the same run
     */
    record Profile(String weights, Workload workload, double stepMs, Map<String, Double> parts, double blocksMs,
            double blockMs, double peakGflops) {
        /** The matmul-only lower bound: {@code 6 * matmul_params * tokens} FLOP at the peak, ms. */
        double lowerBoundMs() {
            ModelFlops n = workload.flops();
            return 6.0 * n.matmulParams() * n.tokens() / (peakGflops * 1e6);
        }
    }

    /**
     * Profiles the shapes named by the arguments, dense, NF4+DQ and NF4+DQ with every block held: {@code 100m} (the
     * default: ~100M at batch 4 x 256), {@code 1.1b} (TinyLlama's shape at batch 1 x 128), {@code 20m} (the quick suite's ~20M at 2 x 128).
     */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        Map<String, Workload> known = Map.of("100m", new Workload("~100M", BenchModels.hundredMillion(), 4, 256),
                "1.1b", new Workload("TinyLlama-1.1B", BenchModels.tinyLlama(), 1, 128),
                "20m", new Workload("~20M", BenchModels.small(), 2, 128));
        List<Workload> workloads = new ArrayList<>();
        for (String arg : args.length == 0 ? new String[] {"100m"} : args) {
            if (!known.containsKey(arg)) {
                System.err.println("StepProfile: unknown shape " + arg + ", expected 100m, 1.1b or 20m");
                System.exit(2);
            }
            workloads.add(known.get(arg));
        }
        System.out.println("StepProfile: one LoRA r=" + RANK + " step (all linear layers, recompute, AdamW) by op class;"
                + " fastest of " + ROUNDS + " interleaved rounds after " + WARMUP + " warm-up");
        System.out.println(Machine.describe());
        System.out.println("libtorch intra-op threads: " + System.getProperty("ai.djl.pytorch.num_threads", "default")
                + " (-Dai.djl.pytorch.num_threads=N)");
        for (Workload w : workloads) {
            System.out.println();
            System.out.println(w.name() + ": " + BenchModels.describe(w.config()) + "; batch " + w.batch() + " x " + w.seq());
            List<Profile> profiles = measure(w);
            System.out.print(table(profiles));
        }
    }

    /**
     * Writes a random bf16 checkpoint of the workload and profiles it dense float32, NF4+DQ, and NF4+DQ with every
     * block holding its dequantized weights from its forward pass to its backward ({@link #HELD}: the most
     * {@code held_weights_mb} can buy, one dequantization per step instead of two).
     */
    static List<Profile> measure(Workload w) throws Exception {
        List<Profile> profiles = new ArrayList<>();
        try (RandomCheckpoint checkpoint = RandomCheckpoint.write(w.config(), DType.BF16, 3)) {
            for (ModelLoader loader : List.of(ModelLoader.builder().build(),
                    ModelLoader.builder().optFormat(BaseFormats.QLORA).build())) {
                boolean dense = profiles.isEmpty();
                try (NDManager manager = NDManager.newBaseManager();
                        CausalLM model = loader.load(checkpoint.dir(), manager);
                        LoraAdapters lora = LoraAdapters.attach(model, LoraSettings.defaults(RANK), manager, 1)) {
                    Batch batch = TrainBenchmark.randomBatch(model.config().vocabSize(), w.batch(), w.seq());
                    profiles.add(profile(dense ? ForwardBenchmark.DENSE : ForwardBenchmark.NF4, w, model, lora, batch,
                            0));
                    if (!dense) {
                        profiles.add(profile(HELD, w, model, lora, batch, Long.MAX_VALUE));
                    }
                }
            }
        }
        return profiles;
    }

    private static Profile profile(String name, Workload w, CausalLM model, LoraAdapters lora, Batch batch,
            long heldWeightBytes) {
        List<Parameter> params = new ArrayList<>();
        lora.parameters().forEach((key, value) -> params.add(new Parameter(key, value)));
        Map<String, double[]> times = new LinkedHashMap<>();
        try (AdamW adam = AdamW.builder().build(); NDManager m = model.manager().newSubManager();
                BlockPieces pieces = new BlockPieces(model, batch, m); MatmulPeak peak = new MatmulPeak(m)) {
            TrainStep step = TrainStep.builder(model).optHeldWeightBytes(heldWeightBytes)
                    .optReleaseHeap(ProcessOverhead.of("cpu").releasesHeap()).build();
            TrainStep blockless = TrainStep.builder(new BlocklessModel(model)).build();
            for (int round = -WARMUP; round < ROUNDS; round++) {
                long t0 = System.nanoTime();
                step.accumulate(List.of(batch), 0);
                long t1 = System.nanoTime();
                adam.step(params, 1e-4);
                Gradients.zero(params);
                long t2 = System.nanoTime();
                record(times, round, ACCUMULATE, t1 - t0);
                record(times, round, OPTIMIZER, t2 - t1);
                record(times, round, STEP, t2 - t0);
                record(times, round, BLOCKLESS, nanos(() -> blockless.accumulate(List.of(batch), 0)));
                record(times, round, DATA, nanos(() -> upload(model, batch)));
                record(times, round, EMBED, nanos(() -> pieces.embed()));
                for (Map.Entry<String, Runnable> e : pieces.cases().entrySet()) {
                    record(times, round, e.getKey(), nanos(e.getValue()));
                }
                Gradients.zero(params);
                record(times, round, PEAK, Math.round(peak.runMs() * 1e6));
            }
        }
        Map<String, Double> ms = new LinkedHashMap<>();
        times.forEach((key, ns) -> ms.put(key, Arrays.stream(ns).min().orElseThrow() / 1e6));
        int layers = model.numLayers();
        Map<String, Double> parts = new LinkedHashMap<>();
        parts.put(MATMUL, layers * ms.get(MATMUL));
        parts.put(DEQUANT, layers * (ms.get(BlockPieces.BASE) - ms.get(MATMUL)));
        parts.put(LORA, layers * (ms.get(BlockPieces.ADAPTED) - ms.get(BlockPieces.BASE)));
        parts.put(ATTENTION, layers * ms.get(ATTENTION));
        parts.put(ELEMENTWISE, layers * ms.get(ELEMENTWISE));
        parts.put(HEAD, ms.get(BLOCKLESS) - ms.get(DATA) - ms.get(EMBED));
        parts.put(EMBED, ms.get(EMBED));
        parts.put(DATA, ms.get(DATA));
        parts.put(OPTIMIZER, ms.get(OPTIMIZER));
        double named = parts.values().stream().mapToDouble(Double::doubleValue).sum();
        parts.put(REMAINDER, ms.get(STEP) - named);
        return new Profile(name, w, ms.get(STEP), parts, ms.get(ACCUMULATE) - ms.get(BLOCKLESS), ms.get(BLOCK),
                MatmulPeak.gflops(ms.get(PEAK)));
    }

    private static void record(Map<String, double[]> times, int round, String key, long nanos) {
        double[] values = times.computeIfAbsent(key, k -> new double[ROUNDS]);
        if (round >= 0) {
            values[round] = nanos;
        }
    }

    private static long nanos(Runnable r) {
        long start = System.nanoTime();
        r.run();
        return System.nanoTime() - start;
    }

    /** What a micro-batch does before the model runs: the batch's arrays and the attention context. */
    private static void upload(CausalLM model, Batch batch) {
        try (NDManager manager = model.manager().newSubManager()) {
            Shape shape = new Shape(batch.rows(), batch.columns());
            manager.create(batch.inputIds(), shape);
            manager.create(batch.labels(), shape);
            NDArray mask = manager.create(batch.attentionMask(), shape);
            model.context(manager.create(batch.positionIds(), shape), 0, mask);
        }
    }

    /** The table of the profiles side by side: ms per step and share of the step for each part. */
    static String table(List<Profile> profiles) {
        StringBuilder out = new StringBuilder();
        out.append(String.format(Locale.ROOT, "%-42s", "part"));
        for (Profile p : profiles) {
            out.append(String.format(Locale.ROOT, " %12s %8s", p.weights() + " ms", "share"));
        }
        out.append('\n');
        for (String part : PARTS) {
            out.append(String.format(Locale.ROOT, "%-42s", part));
            for (Profile p : profiles) {
                double ms = p.parts().get(part);
                out.append(String.format(Locale.ROOT, " %12.0f %8.3f", ms, ms / p.stepMs()));
            }
            out.append('\n');
        }
        out.append(String.format(Locale.ROOT, "%-42s", "step"));
        profiles.forEach(p -> out.append(String.format(Locale.ROOT, " %12.0f %8.3f", p.stepMs(), 1.0)));
        out.append(String.format(Locale.ROOT, "%n%-42s", "6N matmul-only lower bound"));
        profiles.forEach(p -> out.append(String.format(Locale.ROOT, " %12.0f %8.3f", p.lowerBoundMs(),
                p.lowerBoundMs() / p.stepMs())));
        out.append('\n');
        for (Profile p : profiles) {
            out.append(String.format(Locale.ROOT, "%s: peak %.1f GFLOP/s, 6N of peak %.3f (6N over all parameters, the"
                    + " issue's table's count: %.3f), %.1f tokens/s; blocks in the step %.0f ms = %d x %.0f ms, one"
                    + " block isolated %.0f ms (pieces %.0f ms)%n", p.weights(), p.peakGflops(),
                    p.lowerBoundMs() / p.stepMs(),
                    p.workload().flops().allParamsOfPeak(p.stepMs(), p.peakGflops()),
                    p.workload().flops().tokens() / (p.stepMs() / 1e3),
                    p.blocksMs(), p.workload().config().numHiddenLayers(),
                    p.blocksMs() / p.workload().config().numHiddenLayers(), p.blockMs(), blockPieces(p)));
        }
        return out.toString();
    }

    private static double blockPieces(Profile p) {
        double sum = 0;
        for (String part : List.of(MATMUL, DEQUANT, LORA, ATTENTION, ELEMENTWISE)) {
            sum += p.parts().get(part);
        }
        return sum / p.workload().config().numHiddenLayers();
    }

    /**
     * Block 0's pieces on inputs of the step's shapes, each run in the recompute pattern. Holds random inputs and
     * dense copies of the base weights in its own manager.
     */
    private static final class BlockPieces implements AutoCloseable {
        static final String BASE = "base layers as stored";
        static final String ADAPTED = "adapted layers";
        private final CausalLM model;
        private final DecoderBlock block;
        private final NDArray ids;
        private final AttentionContext context;
        private final NDArray hidden;
        private final Map<String, NDArray> denseWeights = new LinkedHashMap<>();
        private final Map<Long, NDArray> inputs = new LinkedHashMap<>();
        private final NDArray q;
        private final NDArray k;
        private final NDArray v;

        BlockPieces(CausalLM model, Batch batch, NDManager m) {
            this.model = model;
            this.block = model.block(0);
            DecoderConfig c = model.config();
            long b = batch.rows();
            long s = batch.columns();
            Shape shape = new Shape(b, s);
            ids = m.create(batch.inputIds(), shape);
            context = model.context(m.create(batch.positionIds(), shape), 0, m.create(batch.attentionMask(), shape));
            hidden = m.randomNormal(new Shape(b, s, c.hiddenSize()));
            for (String name : block.linearNames()) {
                LinearLayer layer = block.linear(name);
                inputs.computeIfAbsent(layer.inFeatures(), in -> m.randomNormal(new Shape(b, s, in)));
                denseWeights.put(name, base(layer).withWeight(DataType.FLOAT32, NDArray::duplicate));
            }
            q = m.randomNormal(new Shape(b, c.numAttentionHeads(), s, c.headDim()));
            k = m.randomNormal(new Shape(b, c.numKeyValueHeads(), s, c.headDim()));
            v = m.randomNormal(new Shape(b, c.numKeyValueHeads(), s, c.headDim()));
        }

        private static BaseLinear base(LinearLayer layer) {
            return layer instanceof LoraLinear l ? l.base() : (BaseLinear) layer;
        }

        /** The measured pieces by name, each one block's worth. */
        Map<String, Runnable> cases() {
            Map<String, Runnable> cases = new LinkedHashMap<>();
            cases.put(MATMUL, () -> projections(name -> {
                NDArray w = denseWeights.get(name);
                return x -> x.matMul(w.transpose());
            }));
            cases.put(BASE, () -> projections(name -> base(block.linear(name))::forward));
            cases.put(ADAPTED, () -> projections(name -> block.linear(name)::forward));
            cases.put(ATTENTION, () -> recomputed(this::attention, q, k, v));
            cases.put(ELEMENTWISE, () -> recomputed(this::elementwise, hidden, q, k,
                    inputs.get((long) model.config().intermediateSize())));
            cases.put(BLOCK, () -> recomputed(x -> new NDList(block.forward(x.get(0), context, null)), hidden));
            return cases;
        }

        /** The embedding lookup of the step's forward (no graph). */
        void embed() {
            JniUtils.setGradMode(false);
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                model.embed(ids);
            }
        }

        private void projections(Function<String, Function<NDArray, NDArray>> layers) {
            for (String name : block.linearNames()) {
                Function<NDArray, NDArray> layer = layers.apply(name);
                recomputed(x -> new NDList(layer.apply(x.get(0))), inputs.get(block.linear(name).inFeatures()));
            }
        }

        /** Scaled scores, the causal mask, softmax and the weighted values, back to {@code [b, s, heads * hd]}. */
        private NDList attention(NDList qkv) {
            DecoderConfig c = model.config();
            NDArray query = qkv.get(0);
            long b = query.getShape().get(0);
            long s = query.getShape().get(2);
            long groups = c.numAttentionHeads() / c.numKeyValueHeads();
            NDArray scores = query.mul(1.0f / (float) Math.sqrt(c.headDim()))
                    .reshape(b, c.numKeyValueHeads(), groups * s, c.headDim())
                    .matMul(qkv.get(1).transpose(0, 1, 3, 2)).reshape(b, c.numKeyValueHeads(), groups, s, s);
            NDArray probs = scores.add(context.mask(false).expandDims(1)).softmax(-1)
                    .reshape(b, c.numKeyValueHeads(), groups * s, s);
            return new NDList(probs.matMul(qkv.get(2)).reshape(b, c.numAttentionHeads(), s, c.headDim())
                    .transpose(0, 2, 1, 3).reshape(b, s, (long) c.numAttentionHeads() * c.headDim()));
        }

        /** Both RMS norms, RoPE on q and k, the gated activation and both residual adds. */
        private NDList elementwise(NDList in) {
            DecoderConfig c = model.config();
            NDArray x = in.get(0);
            NDList out = new NDList();
            for (NDArray weight : block.norms().values()) {
                out.add(c.parts().norm().apply(x, weight, c.rmsNormEps()));
            }
            NDArray cos = context.cos().expandDims(1);
            NDArray sin = context.sin().expandDims(1);
            int half = c.headDim() / 2;
            for (NDArray t : List.of(in.get(1), in.get(2))) {
                NDArray rotated = t.get("..., " + half + ":").neg().concat(t.get("..., :" + half), -1);
                out.add(t.mul(cos).add(rotated.mul(sin)));
            }
            NDArray gate = in.get(3);
            out.add(c.parts().activation().apply(gate).mul(gate));
            out.add(x.add(x).add(x));
            return out;
        }

        /**
         * {@code f} as the recompute step runs a block: without a graph, then with one on leaf copies of the inputs,
         * and the backward of every output against a gradient of ones.
         */
        private static void recomputed(Function<NDList, NDList> f, NDArray... inputs) {
            JniUtils.setGradMode(false);
            try (NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                f.apply(new NDList(inputs));
            }
            try (NDScope scope = new NDScope();
                    GradientCollector collector = inputs[0].getManager().getEngine().newGradientCollector()) {
                scope.suppressNotUsedWarning();
                NDList leaves = new NDList();
                for (NDArray input : inputs) {
                    NDArray leaf = input.stopGradient();
                    leaf.setRequiresGradient(true);
                    leaves.add(leaf);
                }
                NDArray loss = null;
                for (NDArray y : f.apply(leaves)) {
                    loss = loss == null ? y.sum() : loss.add(y.sum());
                }
                collector.backward(loss);
            }
        }

        @Override
        public void close() {
            context.close();
        }
    }
}
