package io.qlora4j.trainer.cvxq;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.quant.cvxq.CvxqTensor;
import io.qlora4j.quant.cvxq.NdCvxqTensor;
import io.qlora4j.quant.cvxq.RowClusters;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.function.Function;

/**
 * One projection while CVXQ calibrates, the reference's {@code LinearQ}: it keeps the original weight {@code W} in the
 * form the model was loaded in (the checkpoint's 16 bits where exact, {@code Float16Weight}) and its bias, multiplies
 * through the current fake-quantized weight {@code W_q} and corrected bias {@code b'} (at first {@code W} itself), and gathers the running statistics the allocation reads: the mean input {@code E[x]} (while
 * recording), and per backward pass {@code G = (dL/dW_q)^2 = (grad_out^T x)^2}, averaged over columns per row
 * ({@code grad_sq0}) and over each cluster's rows per column ({@code grad_sq2}). While probing (a block recomputed
 * under a gradient collector) the output gains a zero <em>probe</em> {@code [.., out]} that requires a gradient, as
 * the reference's backward hook sees {@code grad_out}: a backward pass leaves {@code grad_out} in the probe, and
 * {@code grad_out^T x} is formed one layer at a time. {@code W_q} itself requires no gradient, so no weight-sized
 * gradient buffer is held per projection. {@code W_q} is kept packed: on the heap as quantized, and on the device
 * ({@link NdCvxqTensor}, as the CVXQ base format holds it) from the first product that needs it, decoded for each
 * product bit for bit {@link CvxqTensor#dequantize()}. {@code W} is widened to float32 on the device only for a product
 * before the first quantization; a quantization and its bias correction read it widened on the heap
 * ({@link BaseLinear#weightFloats}), so that quantizing leaves no matrix-sized arrays in the device's allocator.
 */
final class CalibrationLinear implements LinearLayer {
    private final String prefix;
    private final NDManager arrays;
    private final BaseLinear original;
    private final NDArray originalBias;
    private final boolean corrects;
    private final NDArray inputMean;
    private final NDArray gradRow;
    private final NDArray gradPartition;
    private NdCvxqTensor packed;
    private NDArray bias;
    private NDArray membership;
    private RowClusters clusters;
    private CvxqTensor quantized;
    private long forwards;
    private boolean recording;
    private boolean probing;
    private NDArray input;
    private NDArray probe;

    /**
     * A projection with the weight of {@code original} (owned from now: closed with this layer; its own bias is not
     * used) and bias {@code originalBias} (or null); {@code corrects} says whether its bias follows the quantized
     * weight ({@code b'}) or stays the original one.
     */
    CalibrationLinear(String prefix, BaseLinear original, NDArray originalBias, boolean corrects, RowClusters clusters,
            NDManager arrays) {
        this.prefix = prefix;
        this.corrects = corrects;
        this.arrays = arrays;
        this.original = original;
        this.originalBias = originalBias;
        long out = original.outFeatures();
        long in = original.inFeatures();
        this.inputMean = arrays.zeros(new Shape(in));
        this.gradRow = arrays.zeros(new Shape(out));
        this.gradPartition = arrays.zeros(new Shape(clusters.clusters(), in));
        this.bias = originalBias != null ? originalBias.duplicate() : arrays.zeros(new Shape(out));
        setClusters(clusters);
    }

    /** The module path, {@code model.layers.{i}.{name}}. */
    String prefix() {
        return prefix;
    }

    int rows() {
        return Math.toIntExact(original.outFeatures());
    }

    int columns() {
        return Math.toIntExact(original.inFeatures());
    }

    RowClusters clusters() {
        return clusters;
    }

    /** The quantized weight last set, or null before the first quantization. */
    CvxqTensor quantized() {
        return quantized;
    }

    /**
     * The bias to store as floats: the current corrected bias {@code b'}, the original bias of a projection whose bias
     * is not corrected, or null for one that has neither.
     */
    float[] correctedBias() {
        return corrects || originalBias != null ? bias.toFloatArray() : null;
    }

    /** Whether the layer stores a bias ({@link #correctedBias} is not null). */
    boolean storesBias() {
        return corrects || originalBias != null;
    }

    /** The original weight, row-major, as floats on the heap (widened there for the call only). */
    float[] originalWeight() {
        return original.weightFloats();
    }

    /** {@code grad_sq0}: the mean squared weight gradient of every row. */
    float[] rowGradients() {
        return gradRow.toFloatArray();
    }

    /** {@code grad_sq2}: the mean squared weight gradient of every partition {@code c * columns + j}. */
    float[] partitionGradients() {
        return gradPartition.toFloatArray();
    }

    /** Whether forward calls add their input to the running mean (the reference's forward hook). */
    void recording(boolean on) {
        recording = on;
    }

    /**
     * Regroups the rows: the statistics of {@code grad_sq2} stay indexed by cluster slot, as in the reference
     * (which does not remap them when rows move between clusters).
     */
    void setClusters(RowClusters next) {
        this.clusters = next;
        float[] m = new float[next.clusters() * next.rows()];
        int[][] members = next.members();
        for (int c = 0; c < members.length; c++) {
            for (int r : members[c]) {
                m[c * next.rows() + r] = 1f / members[c].length;
            }
        }
        if (membership != null) {
            membership.close();
        }
        membership = arrays.create(m, new Shape(next.clusters(), next.rows()));
    }

    /** {@code scale_sq}: a new sequence starts; the running means over sequences shrink by {@code 1 - 1/count}. */
    void startSequence(long count) {
        float keep = 1f - 1f / count;
        gradRow.muli(keep);
        gradPartition.muli(keep);
    }

    /**
     * Whether forward calls add a probe to their output and keep their input (a block recomputed for backward passes);
     * switching it either way closes the last ones.
     */
    void probing(boolean on) {
        probing = on;
        forget();
    }

    private void forget() {
        if (input != null) {
            input.close();
            probe.close();
        }
        input = null;
        probe = null;
    }

    /**
     * Adds this backward pass's squared weight gradient {@code (grad_out^T x)^2} to the statistics with weight
     * {@code 1/count} and zeroes the probe's gradient.
     */
    void addGradient(long count) {
        NDArray g = probe.getGradient();
        long out = g.getShape().getLastDimension();
        NDArray weightGradient = g.reshape(-1, out).transpose().matMul(input.reshape(-1, input.getShape()
                .getLastDimension()).toType(DataType.FLOAT32, false));
        NDArray squared = weightGradient.square();
        weightGradient.close();
        NDArray perRow = squared.mean(new int[] {1});
        gradRow.addi(perRow.divi(count));
        NDArray perPartition = membership.matMul(squared);
        gradPartition.addi(perPartition.divi(count));
        perRow.close();
        perPartition.close();
        squared.close();
        g.set(new NDIndex("..."), 0f);
        g.close();
    }

    /**
     * Sets {@code W_q} to {@code q}, the quantization of {@code weight} ({@link #originalWeight}, overwritten here), and
     * the bias correction {@code b' = b - (W_q - W) E[x]}. {@code q} goes to the device at the next product; the error
     * {@code W_q - W} is formed on the heap and multiplied on the device from {@code scratch} (direct, native order, at
     * least {@code 4 * rows * columns} bytes), with the device's float32 product as before.
     */
    void setQuantized(CvxqTensor q, float[] weight, ByteBuffer scratch) {
        this.quantized = q;
        if (packed != null) {
            packed.close();
            packed = null;
        }
        if (corrects) {
            float[] decoded = q.dequantize();
            for (int i = 0; i < weight.length; i++) {
                weight[i] = decoded[i] - weight[i];
            }
            updateBias(weight, scratch);
        }
    }

    private void updateBias(float[] error, ByteBuffer scratch) {
        NDArray base = originalBias != null ? originalBias : arrays.zeros(new Shape(rows()));
        ByteBuffer bytes = scratch.slice(0, 4 * error.length).order(ByteOrder.nativeOrder());
        bytes.asFloatBuffer().put(error);
        NDArray shift;
        try (NDArray matrix = arrays.create(bytes, new Shape(rows(), columns()), DataType.FLOAT32)) {
            shift = matrix.matMul(inputMean); // the array reads scratch in place: no copy is made
        }
        NDArray next = base.sub(shift);
        shift.close();
        if (base != originalBias) {
            base.close();
        }
        bias.close();
        bias = next;
    }

    @Override
    public NDArray forward(NDArray x) {
        if (recording) {
            forwards++;
            long in = x.getShape().getLastDimension();
            NDArray mean = x.reshape(-1, in).mean(new int[] {0}).toType(DataType.FLOAT32, false);
            inputMean.addi(mean.subi(inputMean).divi(forwards));
            mean.close();
        }
        NDArray y = weighted(w -> {
            try (NDArray transposed = w.transpose()) {
                return x.matMul(transposed);
            }
        }).add(bias);
        if (probing) {
            forget();
            input = x.stopGradient(); // its own handle on x's storage: the block may close x once it is used
            probe = y.zerosLike();
            probe.setRequiresGradient(true);
            NDScope.unregister(input, probe); // kept past the block's inner scopes, closed by forget()
            y = y.add(probe);
        }
        return y;
    }

    /** Applies {@code use} to {@code W_q} decoded, or to {@code W} widened before the first quantization. */
    private NDArray weighted(Function<NDArray, NDArray> use) {
        if (quantized == null) {
            return original.withWeight(DataType.FLOAT32, use);
        }
        if (packed == null) {
            packed = NdCvxqTensor.upload(quantized, arrays);
        }
        try (NDArray w = packed.dequantize(DataType.FLOAT32)) {
            return use.apply(w);
        }
    }

    @Override
    public NDArray inputGradient(NDArray gradOutput) {
        return weighted(gradOutput::matMul);
    }

    @Override
    public long inFeatures() {
        return original.inFeatures();
    }

    @Override
    public long outFeatures() {
        return original.outFeatures();
    }

    @Override
    public long bytes() {
        return original.bytes() + (packed != null ? packed.bytes() : 0); // W as loaded and W_q packed
    }

    @Override
    public void close() {
        original.close();
        if (packed != null) {
            packed.close();
        }
        for (NDArray a : new NDArray[] {originalBias, inputMean, gradRow, gradPartition, bias, membership}) {
            if (a != null) {
                a.close();
            }
        }
    }
}
