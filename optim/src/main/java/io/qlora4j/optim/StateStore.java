package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import java.util.Map;

/**
 * Where AdamW keeps its per-parameter state between steps. The optimizer's math only ever sees
 * float32 working tensors handed out by {@link #acquire} and returned by {@link #release}; a store
 * decides where the state lives in between (on the device, in host pages, as 8-bit blocks).
 */
interface StateStore extends AutoCloseable {

    /**
     * Returns the parameter's state tensor of the given kind as a float32 array shaped and placed
     * like {@code like}, zero-filled on first use; it is owned by the store, never by an NDScope.
     */
    NDArray acquire(String param, StateKind kind, NDArray like);

    /** Takes a working tensor back after the update; a store keeping it elsewhere copies it. */
    void release(String param, StateKind kind, NDArray working);

    /** Advances the parameter's step count and returns it (1 for the first update). */
    int nextStep(String param);

    /** Copies all state to host tensors keyed {@code <param>.step}, {@code <param>.<kind>}. */
    Map<String, StateTensor> export();

    /** Replaces all state by {@code state}, keyed as {@link #export} writes it. */
    void load(Map<String, StateTensor> state);

    /** Frees the state's native memory. */
    @Override
    void close();
}
