package io.qlora4j.trainer.cvxq;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.pytorch.engine.PtNDArray;
import ai.djl.pytorch.jni.JniUtils;
import ai.djl.training.GradientCollector;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.decoder.AttentionContext;
import io.qlora4j.model.decoder.DecoderBlock;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.generation.Perplexity;
import io.qlora4j.quant.cvxq.BitAllocator;
import io.qlora4j.quant.cvxq.CvxqTensor;
import io.qlora4j.quant.cvxq.PartitionQuantizer;
import io.qlora4j.quant.cvxq.RowClusters;
import io.qlora4j.quant.cvxq.SymmetricEigen;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.List;

/**
 * CVXQ's calibration and quantization of a dense {@link CausalLM}'s block projections, as the reference's
 * {@code Optimizer} runs it:
 * <ol>
 *   <li>the principal directions {@code V} of the final normed hidden state over all calibration tokens (the
 *       reference's {@code transform}; qlora4j takes the top eigenvectors of the proper covariance, sorted by
 *       eigenvalue, where the reference scales its mean term by the sequence count and leaves {@code eig}'s order
 *       unsorted);</li>
 *   <li>for every calibration sequence (cycling over the data): a forward pass through the current fake-quantized
 *       model that records each projection's mean input; then, for the tokens {@code t} at the reference's stride and
 *       direction {@code k = iteration mod pca}, one backward pass each of {@code V_k . h_t}, block by block with the
 *       block's graph kept across the passes, adding every projection's {@code (grad_out^T x)^2} to its running
 *       statistics ({@link CalibrationLinear});</li>
 *   <li>every {@code batchSize} sequences: rows regrouped by {@code log2 var(W_r) + log2 grad_sq0_r}, the dual
 *       ascent on {@code log2 lambda} over all projections, each projection quantized with its depths (no grid search)
 *       and its bias corrected;</li>
 *   <li>at the end: the allocation met within the tolerance counting all side information
 *       ({@link BitAllocator#meetTarget}), the grid-searched quantizer, the bias correction.</li>
 * </ol>
 * With validation texts, the reference's model selection: every {@code validSize} sequences (the reference
 * validates every 64 in its Llama script, on 256 sequences of C4 validation text) and at the end, the grid-searched
 * quantization is scored by its validation perplexity, and the lowest is kept. Unlike the reference, every candidate
 * meets the target within the tolerance (its validated quantizations are at the dual ascent's rate, a quarter bit or
 * so off). Without validation texts the last quantization is the result.
 *
 * <p>Memory: the model, whose projections' weights {@code W} are taken over as loaded (16 bits where the checkpoint's
 * values allow it exactly, with {@code ModelLoader.Builder#optFloat16Projections}; no float32 copy is made), each
 * projection's current quantization {@code W_q} packed as the CVXQ format stores it (the reference holds {@code W} and
 * a dense clone; on the device only once a product needs it), plus one sequence's block inputs and one block's graph.
 * A matrix exists in float32 only for the product or quantization that needs it: on the device {@code W} widened for a
 * product before the first quantization and {@code W_q} decoded per product; on the Java heap {@code W} when regrouped
 * and quantized, and its error {@code W_q - W}, which one reused native buffer the size of the largest projection
 * lends to the device's product for the bias correction. Quantizing thus allocates no matrix-sized native arrays,
 * which the native allocator would keep as it grows around the small arrays that outlive them. The squared gradients
 * are formed one projection at a time from a probe on its output, not kept as a weight-sized gradient per projection.
 */
public final class CvxqCalibration {
    /**
     * One quantized projection.
     *
     * @param prefix its module path, {@code model.layers.{i}.{name}}
     * @param weight the packed weight
     * @param bias the corrected bias {@code b' = b - (W_q - W) E[x]}, the original bias where it is not corrected, or
     *     null where the projection has neither
     */
    public record Layer(String prefix, CvxqTensor weight, float[] bias) {}

    /**
     * What calibration produced.
     *
     * @param layers every block projection in model order
     * @param bitsPerParameter stored bits per parameter of the projections, side information and biases included
     * @param log2Lambda the final multiplier
     * @param tokens calibration tokens processed (over all iterations)
     * @param validationPerplexity the selected quantization's perplexity on the validation texts (NaN without them)
     * @param selectedAt the calibration sequence after which the selected quantization was made
     */
    public record Result(List<Layer> layers, double bitsPerParameter, double log2Lambda, long tokens,
            double validationPerplexity, int selectedAt) {}

    /** One validated quantization: its layers, rate, multiplier, validation perplexity and calibration sequence. */
    private record Candidate(List<Layer> layers, double bitsPerParameter, double log2Lambda, double perplexity,
            int sequence) {}

    /** What calibration reports while it runs. */
    @FunctionalInterface
    public interface Log {
        /** A line for the user: each re-allocation's multiplier and rate, each validation perplexity. */
        void line(String line);

        /**
         * Called as each phase ends, {@code "principal directions"}, {@code "calibration passes"} and
         * {@code "final quantization"} (validation included), for whoever wants to look at the process then; by
         * default nothing.
         */
        default void phaseEnded(String phase) {}
    }

    private final CausalLM model;
    private final CvxqSettings settings;
    private final Log log;
    private final List<CalibrationLinear> linears = new ArrayList<>();
    private final NDManager arrays;
    /** Room for the largest projection's float32 quantization error, made at the first quantization. */
    private ByteBuffer scratch;
    private long sequencesSeen;
    private double log2Lambda = BitAllocator.INITIAL_LOG2_LAMBDA;

    private CvxqCalibration(CausalLM model, CvxqSettings settings, Log log) {
        this.model = model;
        this.settings = settings;
        this.log = log;
        this.arrays = model.manager().newSubManager();
    }

    /**
     * Calibrates on {@code sequences} (token ids, each at least two tokens) and quantizes every block projection of
     * {@code model}, whose projections must be dense; the model's projections are replaced by calibration layers, so
     * close it afterwards. {@code log} receives one line per re-allocation and the end of each phase.
     *
     * @throws IllegalArgumentException when the target cannot be reached
     */
    public static Result run(CausalLM model, List<long[]> sequences, CvxqSettings settings, Log log) {
        return run(model, sequences, List.of(), settings, log);
    }

    /**
     * As {@link #run(CausalLM, List, CvxqSettings, Log)}, with the reference's model selection: every
     * {@code validSize} sequences (at a re-allocation) and at the end, the grid-searched quantization at the target is
     * scored by its perplexity on {@code validation} (token ids), and the one with the lowest is the result (the
     * earliest on a tie); without validation texts the last quantization is.
     */
    public static Result run(CausalLM model, List<long[]> sequences, List<long[]> validation, CvxqSettings settings,
            Log log) {
        CvxqCalibration c = new CvxqCalibration(model, settings, log);
        try {
            return c.calibrate(sequences, validation);
        } finally {
            c.arrays.close();
        }
    }

    private Result calibrate(List<long[]> sequences, List<long[]> validation) {
        wrap();
        NDArray directions = principalDirections(sequences);
        log.phaseEnded("principal directions");
        long tokens = 0;
        Candidate best = null;
        for (int it = 0; it < settings.iterations(); it++) {
            long[] ids = sequences.get(it % sequences.size());
            step(ids, directions, (int) (it % directions.getShape().get(0)));
            tokens += ids.length;
            if ((it + 1) % settings.batchSize() == 0) {
                if (!validation.isEmpty() && (it + 1) % settings.validSize() == 0) {
                    best = better(best, candidate(validation, it + 1));
                }
                List<BitAllocator.Matrix> matrices = regroup();
                double side = BitAllocator.reachableRates(matrices)[0];
                log2Lambda = BitAllocator.dualAscent(matrices, settings.targetBits() - side, log2Lambda,
                        BitAllocator.ASCENT_RATE, BitAllocator.ASCENT_ITERATIONS);
                List<byte[]> depths = new ArrayList<>();
                for (BitAllocator.Matrix m : matrices) {
                    depths.add(BitAllocator.depths(m, log2Lambda));
                }
                quantizeAll(depths, PartitionQuantizer.plain());
                log.line(String.format(java.util.Locale.ROOT, "sequence %d: log2 lambda %.3f, %.4f bits/param",
                        it + 1, log2Lambda, BitAllocator.storedRate(matrices, depths)));
            }
        }
        log.phaseEnded("calibration passes");
        Candidate last = candidate(validation, settings.iterations());
        log.phaseEnded("final quantization");
        best = validation.isEmpty() ? last : better(best, last);
        directions.close();
        return new Result(best.layers(), best.bitsPerParameter(), best.log2Lambda(), tokens, best.perplexity(),
                best.sequence());
    }

    /**
     * The grid-searched quantization at the target as the statistics stand after {@code sequence} sequences, scored
     * on {@code validation} when given (NaN otherwise); the projections keep it until the next quantization.
     */
    private Candidate candidate(List<long[]> validation, int sequence) {
        List<BitAllocator.Matrix> matrices = regroup();
        BitAllocator.Allocation a = BitAllocator.meetTarget(matrices, settings.targetBits(), log2Lambda,
                settings.tolerance());
        quantizeAll(a.depths(), PartitionQuantizer.gridSearched());
        List<Layer> layers = new ArrayList<>();
        for (CalibrationLinear l : linears) {
            layers.add(new Layer(l.prefix(), l.quantized(), l.correctedBias()));
        }
        double perplexity = Double.NaN;
        if (!validation.isEmpty()) {
            JniUtils.setGradMode(false);
            Perplexity p = Perplexity.NONE;
            for (long[] ids : validation) {
                p = p.plus(Perplexity.of(model, ids));
            }
            perplexity = p.perplexity();
            log.line(String.format(java.util.Locale.ROOT, "sequence %d: validation perplexity %.4f at %.4f"
                    + " bits/param", sequence, perplexity, a.bitsPerParameter()));
        }
        return new Candidate(layers, a.bitsPerParameter(), a.log2Lambda(), perplexity, sequence);
    }

    /** The reference's selection: a later candidate replaces the best only with a strictly lower perplexity. */
    private static Candidate better(Candidate best, Candidate next) {
        return best == null || next.perplexity() < best.perplexity() ? next : best;
    }

    /** Replaces every block projection by a calibration layer that takes over its weight, and its bias. */
    private void wrap() {
        for (int i = 0; i < model.numLayers(); i++) {
            DecoderBlock block = model.block(i);
            for (String name : block.linearNames()) {
                if (!(block.linear(name) instanceof BaseLinear base)) {
                    throw new IllegalArgumentException("CVXQ calibrates base projections; " + name + " is wrapped");
                }
                NDArray b = null;
                if (base.bias() != null) {
                    b = base.bias().toType(DataType.FLOAT32, true);
                    b.attach(arrays);
                }
                int rows = Math.toIntExact(base.outFeatures());
                RowClusters clusters = RowClusters.consecutive(rows, RowClusters.count(rows, settings.groupSize()));
                boolean corrects = settings.biasCorrection() == CvxqSettings.BiasCorrection.ALL
                        || model.config().biases().contains(name) || model.config().family().biasKey(name) != null;
                CalibrationLinear l = new CalibrationLinear("model.layers." + i + "." + name, base, b, corrects,
                        clusters, arrays);
                block.setLinear(name, l); // base now belongs to l
                linears.add(l);
            }
        }
    }

    /** The top principal directions {@code [k, hidden]} of the final normed hidden state over every sequence. */
    private NDArray principalDirections(List<long[]> sequences) {
        int h = Math.toIntExact(model.config().hiddenSize());
        double[] second = new double[h * h];
        double[] mean = new double[h];
        long count = 0;
        JniUtils.setGradMode(false);
        for (long[] ids : sequences) {
            try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
                scope.suppressNotUsedWarning();
                NDArray input = m.create(ids, new Shape(1, ids.length));
                AttentionContext ctx = model.context(m, ids.length, 0, null);
                NDArray normed = model.finalNorm(model.hiddenStates(input, ctx, null))
                        .toType(DataType.FLOAT32, false).reshape(ids.length, h);
                float[] outer = normed.transpose().matMul(normed).toFloatArray();
                float[] sum = normed.sum(new int[] {0}).toFloatArray();
                for (int i = 0; i < outer.length; i++) {
                    second[i] += outer[i];
                }
                for (int i = 0; i < h; i++) {
                    mean[i] += sum[i];
                }
                count += ids.length;
            }
        }
        double[] covariance = new double[h * h];
        for (int i = 0; i < h; i++) {
            for (int j = 0; j < h; j++) {
                covariance[i * h + j] = second[i * h + j] / count - (mean[i] / count) * (mean[j] / count);
            }
        }
        double[][] top = new SymmetricEigen(covariance, h).topVectors(Math.min(settings.pca(), h));
        float[] flat = new float[top.length * h];
        for (int k = 0; k < top.length; k++) {
            for (int i = 0; i < h; i++) {
                flat[k * h + i] = (float) top[k][i];
            }
        }
        return arrays.create(flat, new Shape(top.length, h));
    }

    /** One calibration sequence: recorded forward, then the backward passes block by block. */
    private void step(long[] ids, NDArray directions, int component) {
        sequencesSeen++;
        linears.forEach(l -> l.startSequence(sequencesSeen));
        int layers = model.numLayers();
        int length = ids.length;
        try (NDManager m = model.manager().newSubManager(); NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray input = m.create(ids, new Shape(1, length));
            AttentionContext ctx = model.context(m, length, 0, null);
            NDArray[] inputs = new NDArray[layers + 1];
            JniUtils.setGradMode(false);
            linears.forEach(l -> l.recording(true));
            inputs[0] = model.embed(input);
            for (int l = 0; l < layers; l++) {
                try (NDScope block = new NDScope()) {
                    inputs[l + 1] = model.block(l).forward(inputs[l], ctx, null);
                    NDScope.unregister(inputs[l + 1]);
                }
            }
            linears.forEach(l -> l.recording(false));
            int[] positions = settings.positions(length);
            NDArray direction = directions.get(component);
            try (GradientCollector collector = m.getEngine().newGradientCollector()) {
                NDArray[] upstream = new NDArray[positions.length];
                for (int i = 0; i < positions.length; i++) {
                    upstream[i] = topGradient(inputs[layers], positions[i], direction, collector);
                }
                for (int l = layers - 1; l >= 0; l--) {
                    List<CalibrationLinear> mine = linears.subList(l * linearsPerBlock(), (l + 1) * linearsPerBlock());
                    mine.forEach(c -> c.probing(true));
                    try (NDScope block = new NDScope()) {
                        NDArray leaf = inputs[l].stopGradient();
                        leaf.setRequiresGradient(true);
                        NDArray out = model.block(l).forward(leaf, ctx, null);
                        for (int i = 0; i < positions.length; i++) {
                            JniUtils.backward((PtNDArray) out, (PtNDArray) upstream[i], i < positions.length - 1, false);
                            mine.forEach(c -> c.addGradient(sequencesSeen));
                            NDArray g = leaf.getGradient();
                            upstream[i].close();
                            upstream[i] = g.duplicate();
                            NDScope.unregister(upstream[i]);
                            g.set(new NDIndex("..."), 0f);
                            g.close();
                        }
                    }
                    mine.forEach(c -> c.probing(false));
                    for (NDArray u : upstream) {
                        NDScope.register(u);
                    }
                }
            }
        }
    }

    private int linearsPerBlock() {
        return linears.size() / model.numLayers();
    }

    /** {@code d(V_k . finalNorm(h_t)) / dh} as a {@code [1, T, hidden]} array zero outside row {@code t}. */
    private NDArray topGradient(NDArray last, int t, NDArray direction, GradientCollector collector) {
        NDArray row = last.get(new NDIndex(":, {}:{}, :", t, t + 1)).stopGradient();
        row.setRequiresGradient(true);
        NDArray score = model.finalNorm(row).toType(DataType.FLOAT32, false).reshape(-1).dot(direction);
        collector.backward(score);
        NDArray g = row.getGradient();
        NDArray full = last.zerosLike();
        full.set(new NDIndex(":, {}:{}, :", t, t + 1), g);
        g.close();
        return full;
    }

    /** Regroups every projection's rows and returns the allocation's view of them. */
    private List<BitAllocator.Matrix> regroup() {
        List<BitAllocator.Matrix> matrices = new ArrayList<>();
        for (CalibrationLinear l : linears) {
            int rows = l.rows();
            int columns = l.columns();
            float[] w = l.originalWeight();
            float[] gradRow = l.rowGradients();
            double[] rowScore = new double[rows];
            for (int r = 0; r < rows; r++) {
                rowScore[r] = log2(unbiasedVariance(w, r * columns, columns)) + log2(gradRow[r]);
            }
            RowClusters clusters = RowClusters.byScore(rowScore, l.clusters().clusters());
            l.setClusters(clusters);
            double[] s2 = CvxqTensor.log2Variances(w, columns, clusters);
            float[] g2 = l.partitionGradients();
            double[] scores = new double[s2.length];
            for (int p = 0; p < scores.length; p++) {
                scores[p] = s2[p] + log2(g2[p]);
            }
            long fixed = CvxqTensor.sideBytes(rows, columns, clusters.clusters()) + (l.storesBias() ? 2L * rows : 0);
            matrices.add(new BitAllocator.Matrix(scores, clusters.slots(), (long) rows * columns, fixed));
        }
        return matrices;
    }

    private void quantizeAll(List<byte[]> depths, PartitionQuantizer quantizer) {
        if (scratch == null) {
            long largest = linears.stream().mapToLong(l -> (long) l.rows() * l.columns()).max().orElse(0);
            // 64-byte aligned as the engine aligns its own arrays, so that its product reads the error alike
            scratch = ByteBuffer.allocateDirect(Math.toIntExact(4 * largest + 64)).alignedSlice(64)
                    .order(ByteOrder.nativeOrder());
        }
        for (int i = 0; i < linears.size(); i++) {
            CalibrationLinear l = linears.get(i);
            float[] w = l.originalWeight();
            l.setQuantized(CvxqTensor.quantize(w, l.rows(), l.columns(), l.clusters(), depths.get(i), quantizer), w,
                    scratch);
        }
    }

    private static double unbiasedVariance(float[] w, int from, int n) {
        double mean = 0;
        for (int i = 0; i < n; i++) {
            mean += w[from + i];
        }
        mean /= n;
        double sum = 0;
        for (int i = 0; i < n; i++) {
            double d = w[from + i] - mean;
            sum += d * d;
        }
        return sum / (n - 1);
    }

    private static double log2(double x) {
        return Math.log(x) / Math.log(2);
    }
}
