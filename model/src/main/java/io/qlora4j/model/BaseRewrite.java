package io.qlora4j.model;

import ai.djl.ndarray.NDManager;
import io.qlora4j.model.format.BaseFormat;

/**
 * Changes chosen base projections' full-precision weights as a loader reads them, before their base format stores
 * them: how adapter initialisations that move part of a weight into the adapter (PiSSA's residual, LoftQ's
 * quantized residual) reach the base. One projection is in memory at a time, so the full-precision model never is.
 */
public interface BaseRewrite {
    /** Whether the projection at {@code module} (such as {@code model.layers.0.self_attn.q_proj}) is rewritten. */
    boolean rewrites(String module);

    /**
     * The weight {@code [out, in]} (row-major float32) to store in {@code format} instead of {@code weight}. Products
     * may run on {@code manager}'s device; what the call creates there it releases.
     *
     * @throws ModelException naming the module when the weight cannot be rewritten
     */
    float[] rewrite(String module, float[] weight, long[] shape, BaseFormat format, NDManager manager)
            throws ModelException;
}
