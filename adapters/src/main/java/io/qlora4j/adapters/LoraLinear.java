package io.qlora4j.adapters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.GraphScalars;

/**
 * A frozen linear layer plus a trainable low-rank update, as PEFT's {@code lora.Linear}:
 * {@code y = base(x) + dropout(x) A^T B^T * scaling} with {@code A [r, in]} and {@code B [out, r]} kept in
 * float32. Only A and B require gradients; gradients also flow to {@code x}, so blocks can be recomputed.
 *
 * <p>The LoRA path always computes in float32. A float16 input (CUDA) is widened by type promotion, and the
 * float32 update is added in place to the float16 base output, which casts it back; both steps are
 * differentiable, unlike {@code toType}, which DJL runs without recording a graph.
 *
 * <p>Dropout is active only while training. Its keep mask is a pure function of the adapter's dropout seed,
 * this module's index and the input shape (the engine's generator is reseeded from them before drawing), so a
 * recomputed block sees exactly the mask of its first forward pass and a resumed run reproduces the masks
 * from the seed alone. Reseeding resets the engine's global random stream: code that draws from it itself should
 * seed it again after a training forward pass.
 */
public final class LoraLinear implements LinearLayer {
    private final LinearLayer base;
    private final NDArray loraA;
    private final NDArray loraB;
    private final LoraSettings settings;
    private final int moduleIndex;
    private boolean training;
    private long dropoutSeed;

    /**
     * Wraps {@code base} with {@code loraA [r, in]} and {@code loraB [out, r]} (float32, r = settings.rank());
     * {@code moduleIndex} tells this module's dropout masks apart from the other modules'.
     */
    LoraLinear(LinearLayer base, NDArray loraA, NDArray loraB, LoraSettings settings, int moduleIndex) {
        Shape a = new Shape(settings.rank(), base.inFeatures());
        Shape b = new Shape(base.outFeatures(), settings.rank());
        if (!loraA.getShape().equals(a) || !loraB.getShape().equals(b)) {
            throw new IllegalArgumentException("LoRA matrices must be A " + a + " and B " + b + ", got "
                    + loraA.getShape() + " and " + loraB.getShape());
        }
        if (loraA.getDataType() != DataType.FLOAT32 || loraB.getDataType() != DataType.FLOAT32) {
            throw new IllegalArgumentException("LoRA matrices must be float32, got " + loraA.getDataType() + " and "
                    + loraB.getDataType());
        }
        this.base = base;
        this.loraA = loraA;
        this.loraB = loraB;
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

    /** The frozen layer this adapter wraps. */
    public LinearLayer base() {
        return base;
    }

    /** This module's rank, alpha, dropout and scaling rule. */
    public LoraSettings settings() {
        return settings;
    }

    void setTraining(boolean training) {
        this.training = training;
    }

    void setDropoutSeed(long seed) {
        this.dropoutSeed = seed;
    }

    /** Applies {@code base(x) + dropout(x) A^T B^T * scaling} to {@code x [..., in]} (float32 or float16). */
    @Override
    public NDArray forward(NDArray x) {
        DataType type = x.getDataType();
        if (type != DataType.FLOAT32 && type != DataType.FLOAT16) {
            throw new IllegalArgumentException("LoRA input must be float32 or float16, got " + type);
        }
        NDArray y = base.forward(x);
        NDArray update;
        try (NDScope scope = new NDScope()) {
            NDArray factor = inputFactor(x);
            NDArray h = factor == null ? x : x.mul(factor);
            update = GraphScalars.times(h.matMul(loraA.transpose()).matMul(loraB.transpose()), settings.scaling());
            NDScope.unregister(update);
        }
        // In place: no second output-sized array, and a float16 y takes the float32 update as float16.
        y.addi(update);
        update.close();
        return y;
    }

    /**
     * {@code gradOutput (W + scaling B A)}, the input gradient of the layer without dropout (as in evaluation),
     * computed without a graph: the trainable matrices are read through views that record nothing.
     */
    @Override
    public NDArray inputGradient(NDArray gradOutput) {
        NDArray dx = base.inputGradient(gradOutput);
        try (NDScope scope = new NDScope()) {
            NDArray update = gradOutput.toType(DataType.FLOAT32, false).matMul(loraB.stopGradient())
                    .matMul(loraA.stopGradient()).muli((float) settings.scaling());
            dx.addi(update.toType(dx.getDataType(), false));
        }
        return dx;
    }

    /**
     * What x is multiplied by before the LoRA path: the scaled dropout keep mask while training, a float32 one
     * to widen a float16 input, or null when x goes in unchanged. Always float32, so the product is float32.
     */
    private NDArray inputFactor(NDArray x) {
        NDManager manager = x.getManager();
        double p = settings.dropout();
        if (training && p > 0) {
            manager.getEngine().setRandomSeed(maskSeed());
            NDArray keep = manager.randomUniform(0f, 1f, x.getShape(), DataType.FLOAT32).gte((float) p);
            return keep.toType(DataType.FLOAT32, false).muli((float) (1 / (1 - p)));
        }
        return x.getDataType() == DataType.FLOAT32 ? null : manager.ones(new Shape(1), DataType.FLOAT32);
    }

    /** Mixes the dropout seed and the module index (SplitMix64's finalizer) into the engine's 32-bit seed. */
    private int maskSeed() {
        long z = dropoutSeed + 0x9E3779B97F4A7C15L * (moduleIndex + 1L);
        z = (z ^ (z >>> 30)) * 0xBF58476D1CE4E5B9L;
        z = (z ^ (z >>> 27)) * 0x94D049BB133111EBL;
        return (int) (z ^ (z >>> 31));
    }

    @Override
    public long inFeatures() {
        return base.inFeatures();
    }

    @Override
    public long outFeatures() {
        return base.outFeatures();
    }

    /** The base layer's bytes plus those of A and B. */
    @Override
    public long bytes() {
        return base.bytes() + (loraA.size() + loraB.size()) * DataType.FLOAT32.getNumOfBytes();
    }

    /** Releases the base layer and the LoRA matrices. */
    @Override
    public void close() {
        base.close();
        loraA.close();
        loraB.close();
    }
}
