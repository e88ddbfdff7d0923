package io.qlora4j.adapters;

import ai.djl.ndarray.NDManager;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormat;
import java.util.Map;
import java.util.Random;

/**
 * How an adapter's tensors start: PEFT's {@code init_lora_weights}. LoRA's own start (A Kaiming-uniform, B = 0)
 * leaves the base as it is; PiSSA and LoftQ split each targeted weight into a new base weight and the starting
 * {@code A}, {@code B} ({@link #split}), which a loader applies while it reads the checkpoint ({@link InitialAdapter}).
 * Members are registered in {@link AdapterInits}; the computations are package-private, so they live in this package.
 */
public abstract class AdapterInit {
    AdapterInit() {}

    /** The {@code init_lora_weights} value PEFT writes for it: {@code true}, {@code "pissa_niter_16"}, {@code "loftq"}. */
    public abstract Object peftValue();

    /** One line for logs and cards, such as {@code PiSSA (randomised SVD, 16 iterations)}. */
    public abstract String describe();

    /** Whether the base weights of the modules it starts change (PiSSA, LoftQ). */
    public abstract boolean rewritesBase();

    /**
     * Whether running it again gives another base: PEFT re-runs the initialisation an adapter file names when it
     * loads the adapter, so such an adapter is only exact over the base it trained with (PiSSA's randomised SVD draws
     * its own sketch); false by default.
     */
    public boolean rerunsDiffer() {
        return false;
    }

    /** Further {@code adapter_config.json} fields it is described by (LoftQ's {@code loftq_config}); none by default. */
    Map<String, Object> configFields() {
        return Map.of();
    }

    /**
     * Splits the full-precision weight {@code w [out, in]} of one module into the weight its base then stores in
     * {@code format} and the module's starting A and B ({@link #rewritesBase} members only); {@code random} is this
     * module's own stream, {@code manager} the device for the products (what the call creates there it releases),
     * and {@code report} collects what the initialisation measured.
     */
    Split split(String module, float[] w, long[] shape, LoraSettings settings, BaseFormat format, Random random,
            NDManager manager, InitReport report) throws ModelException {
        throw new IllegalStateException(describe() + " keeps the base weights");
    }

    /**
     * A module's split.
     *
     * @param base the weight {@code [out, in]} the base format stores
     * @param a the starting {@code A [r, in]}
     * @param b the starting {@code B [out, r]}
     */
    record Split(float[] base, float[] a, float[] b) {}

    @Override
    public String toString() {
        return describe();
    }
}
