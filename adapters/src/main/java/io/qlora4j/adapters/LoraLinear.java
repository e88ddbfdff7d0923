package io.qlora4j.adapters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.WeightHold;
import java.util.Collections;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.Map;

/**
 * A base linear layer plus a trainable low-rank update, as PEFT's {@code lora.Linear}: {@code A [r, in]},
 * {@code B [out, r]} and the variant's extra tensors (DoRA's magnitude), kept in float32, combined with the base
 * output by the settings' {@link AdapterVariant} ({@code y = base(x) + dropout(x) A^T B^T * scaling} for plain
 * LoRA). Only the adapter's tensors require gradients; gradients also flow to {@code x}, so blocks can be
 * recomputed.
 *
 * <p>The adapter path always computes in float32: a float16 input (CUDA) is widened by type promotion and the
 * result is cast back to float16 in the graph, unlike {@code toType}, which DJL runs without recording one.
 *
 * <p>Dropout is active only while training. Its keep mask is a pure function of the adapter's dropout seed,
 * this module's index and the input shape (the engine's generator is reseeded from them before drawing), so a
 * recomputed block sees exactly the mask of its first forward pass and a resumed run reproduces the masks
 * from the seed alone. Reseeding resets the engine's global random stream: code that draws from it itself should
 * seed it again after a training forward pass.
 */
public final class LoraLinear implements LinearLayer {
    private final BaseLinear base;
    private final NDArray loraA;
    private final NDArray loraB;
    private final Map<String, NDArray> extras;
    private final LoraSettings settings;
    private final int moduleIndex;
    private boolean training;
    private long dropoutSeed;

    /**
     * Wraps {@code base} with {@code loraA [r, in]}, {@code loraB [out, r]} and the variant's {@code extras} by PEFT
     * suffix (float32, r = settings.rank()); {@code moduleIndex} tells this module's dropout masks apart from the
     * other modules'.
     */
    LoraLinear(BaseLinear base, NDArray loraA, NDArray loraB, Map<String, NDArray> extras, LoraSettings settings,
            int moduleIndex) {
        Shape a = new Shape(settings.rank(), base.inFeatures());
        Shape b = new Shape(base.outFeatures(), settings.rank());
        if (!loraA.getShape().equals(a) || !loraB.getShape().equals(b)) {
            throw new IllegalArgumentException("LoRA matrices must be A " + a + " and B " + b + ", got "
                    + loraA.getShape() + " and " + loraB.getShape());
        }
        if (!extras.keySet().equals(new HashSet<>(settings.variant().extraNames()))) {
            throw new IllegalArgumentException(settings.variant() + " needs " + settings.variant().extraNames()
                    + ", got " + extras.keySet());
        }
        for (Map.Entry<String, NDArray> e : extras.entrySet()) {
            Shape expected = new Shape(settings.variant().extraShape(e.getKey(), base.inFeatures(), base.outFeatures()));
            if (!e.getValue().getShape().equals(expected)) {
                throw new IllegalArgumentException(e.getKey() + " must be " + expected + ", got " + e.getValue().getShape());
            }
        }
        for (NDArray t : tensorsOf(loraA, loraB, extras).values()) {
            if (t.getDataType() != DataType.FLOAT32) {
                throw new IllegalArgumentException("adapter tensors must be float32, got " + t.getDataType());
            }
        }
        this.base = base;
        this.loraA = loraA;
        this.loraB = loraB;
        this.extras = Collections.unmodifiableMap(new LinkedHashMap<>(extras));
        this.settings = settings;
        this.moduleIndex = moduleIndex;
    }

    /** The down projection {@code A [r, in]} (float32, trainable). */
    public NDArray loraA() {
        return loraA;
    }

    /** The up projection {@code B [out, r]} (float32, trainable). */
    public NDArray loraB() {
        return loraB;
    }

    /** The variant's trainable tensors besides A and B, by PEFT key suffix (DoRA: {@code lora_magnitude_vector}). */
    public Map<String, NDArray> extras() {
        return extras;
    }

    /** The base layer this adapter wraps. */
    public BaseLinear base() {
        return base;
    }

    /** This module's rank, alpha, dropout, scaling rule and variant. */
    public LoraSettings settings() {
        return settings;
    }

    /** Every trainable tensor by PEFT key suffix: {@code lora_A.weight}, {@code lora_B.weight}, then the extras. */
    Map<String, NDArray> tensors() {
        return tensorsOf(loraA, loraB, extras);
    }

    private static Map<String, NDArray> tensorsOf(NDArray a, NDArray b, Map<String, NDArray> extras) {
        Map<String, NDArray> all = new LinkedHashMap<>();
        all.put("lora_A.weight", a);
        all.put("lora_B.weight", b);
        all.putAll(extras);
        return all;
    }

    /** The tensors as the variant computes with them. */
    AdapterTensors adapterTensors() {
        return new AdapterTensors(loraA, loraB, extras, settings.scaling());
    }

    void setTraining(boolean training) {
        this.training = training;
    }

    void setDropoutSeed(long seed) {
        this.dropoutSeed = seed;
    }

    /** Applies the variant to {@code x [..., in]} (float32 or float16); the result has x's dtype. */
    @Override
    public NDArray forward(NDArray x) {
        return forward(x, base.forward(x));
    }

    /** {@link #forward} with the base's product taken {@linkplain LinearLayer#forwardGraphFree graph-free} too. */
    @Override
    public NDArray forwardGraphFree(NDArray x) {
        return forward(x, base.forwardGraphFree(x));
    }

    /**
     * The layer's output for {@code x} given {@code baseOutput}, the base layer's product of x obtained already (a
     * selective recompute keeps it from the forward pass instead of multiplying again); the variant adds into it in
     * place, so the caller hands over an array it does not read afterwards.
     */
    public NDArray forward(NDArray x, NDArray baseOutput) {
        DataType type = x.getDataType();
        if (type != DataType.FLOAT32 && type != DataType.FLOAT16) {
            throw new IllegalArgumentException("LoRA input must be float32 or float16, got " + type);
        }
        NDArray result = baseOutput;
        boolean dropped = training && settings.dropout() > 0;
        try (NDScope scope = new NDScope()) {
            NDArray factor = inputFactor(x, dropped);
            NDArray y = settings.variant().forward(base, adapterTensors(), result, factor == null ? x : x.mul(factor),
                    dropped);
            NDScope.unregister(y);
            return y;
        }
    }

    /**
     * {@code gradOutput W'}, with {@code W'} the variant's merged weight: the input gradient of the layer without
     * dropout (as in evaluation), computed without a graph from views of the trainable tensors that record nothing.
     */
    @Override
    public NDArray inputGradient(NDArray gradOutput) {
        return base.withWeight(DataType.FLOAT32, w -> {
            try (NDScope scope = new NDScope()) {
                NDArray merged = settings.variant().merge(w, adapterTensors().detached());
                NDArray dx = gradOutput.toType(DataType.FLOAT32, false).matMul(merged)
                        .toType(gradOutput.getDataType(), false);
                NDScope.unregister(dx);
                return dx;
            }
        });
    }

    /**
     * What x is multiplied by before the adapter path: the scaled dropout keep mask while training, a float32 one
     * to widen a float16 input, or null when x goes in unchanged. Always float32, so the product is float32.
     */
    private NDArray inputFactor(NDArray x, boolean dropped) {
        NDManager manager = x.getManager();
        if (dropped) {
            double p = settings.dropout();
            manager.getEngine().setRandomSeed(maskSeed());
            NDArray keep = manager.randomUniform(0f, 1f, x.getShape(), DataType.FLOAT32).gte((float) p);
            return keep.toType(DataType.FLOAT32, false).muli((float) (1 / (1 - p)));
        }
        return x.getDataType() == DataType.FLOAT32 ? null : manager.ones(new Shape(1), DataType.FLOAT32);
    }

    /** The dropout seed and the module index mixed into the engine's 32-bit seed. */
    private int maskSeed() {
        return (int) Seeds.mix(dropoutSeed, moduleIndex);
    }

    /** The base layer's hold: the adapter's own tensors are always ready. */
    @Override
    public WeightHold hold(DataType type) {
        return base.hold(type);
    }

    @Override
    public long heldBytes(DataType type) {
        return base.heldBytes(type);
    }

    @Override
    public long inFeatures() {
        return base.inFeatures();
    }

    @Override
    public long outFeatures() {
        return base.outFeatures();
    }

    /** The base layer's bytes plus those of the adapter's tensors. */
    @Override
    public long bytes() {
        long elements = tensors().values().stream().mapToLong(NDArray::size).sum();
        return base.bytes() + elements * DataType.FLOAT32.getNumOfBytes();
    }

    /** Releases the base layer and the adapter's tensors. */
    @Override
    public void close() {
        base.close();
        closeAdapter();
    }

    /** Releases the adapter's tensors only. */
    void closeAdapter() {
        tensors().values().forEach(NDArray::close);
    }
}
