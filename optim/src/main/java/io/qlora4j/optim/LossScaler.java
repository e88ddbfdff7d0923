package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDScope;
import java.util.List;

/**
 * The dynamic loss scale of float16 training, as {@code torch.amp.GradScaler} keeps it: the loss (and so
 * every gradient) is multiplied by the scale so that small float16 gradients do not flush to zero; before
 * the optimizer step the gradients are divided by it again. A step whose gradients overflowed is skipped
 * and halves the scale; 2000 good steps in a row double it. The state is two numbers, saved with a
 * checkpoint so that a resumed run scales as the first one would have.
 */
public final class LossScaler {
    /** torch's initial scale, 2^16. */
    public static final float INITIAL_SCALE = 65536f;
    private static final float GROWTH = 2f;
    private static final float BACKOFF = 0.5f;
    private static final int GROWTH_INTERVAL = 2000;

    private float scale;
    private int goodSteps;

    /** A scaler resuming from {@code scale} after {@code goodSteps} unskipped steps since the last change. */
    public LossScaler(float scale, int goodSteps) {
        if (!(scale > 0) || Float.isInfinite(scale) || goodSteps < 0) {
            throw new IllegalArgumentException("loss scale must be positive and finite, good steps >= 0; got " + scale
                    + ", " + goodSteps);
        }
        this.scale = scale;
        this.goodSteps = goodSteps;
    }

    /** A fresh scaler at {@link #INITIAL_SCALE}. */
    public LossScaler() {
        this(INITIAL_SCALE, 0);
    }

    /** The factor the next step's loss is multiplied by. */
    public float scale() {
        return scale;
    }

    /** Unskipped steps since the scale last changed. */
    public int goodSteps() {
        return goodSteps;
    }

    /**
     * Divides every gradient in place by the scale (multiplying by its float32 reciprocal, as torch does),
     * then updates the scale; returns false, leaving the gradients to be zeroed unused, when one of them holds
     * an infinity or NaN: the step must be skipped.
     */
    public boolean unscaleAndUpdate(List<Parameter> params) {
        boolean finite = true;
        float inverse = 1f / scale;
        try (NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            for (Parameter param : params) {
                NDArray grad = param.gradient();
                grad.muli(inverse);
                finite &= Float.isFinite(grad.abs().max().getFloat());
            }
        }
        if (finite) {
            goodSteps++;
            if (goodSteps == GROWTH_INTERVAL) {
                scale *= GROWTH;
                goodSteps = 0;
            }
        } else {
            scale *= BACKOFF;
            goodSteps = 0;
        }
        return finite;
    }
}
