package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import java.util.List;
import java.util.Map;

/**
 * Where AdamW keeps its per-parameter state between steps. The optimizer's math only ever sees
 * float32 working moments for one page of a parameter at a time, handed out by {@link #acquire}
 * and returned by {@link #release}; the store decides where the state lives in between (on the
 * device or in host memory, as float32 or 8-bit blocks).
 */
interface StateStore extends AutoCloseable {

    /** Starts a step over these parameters, in this order; per-step counters restart. */
    void beginStep(List<String> params);

    /**
     * Returns how the parameter's state is cut into pages, creating zero state on first use and
     * checking loaded state against the parameter's shape and device.
     */
    StateLayout layout(String param, NDArray value);

    /** Advances the parameter's step count and returns it (1 for the first update). */
    int nextStep(String param);

    /**
     * Returns the working moments of one page, shaped like {@code like} (the parameter elements
     * the page covers) and on its device; they stay owned by the store or die with the caller's
     * NDScope.
     */
    Moments acquire(String param, int page, NDArray like);

    /** Takes the page's updated working moments back. */
    void release(String param, int page, Moments working);

    /** Where the state is now and what the latest step moved. */
    PagingStats stats();

    /** Copies all state to host tensors keyed {@code <param>.step}, {@code <param>.<suffix>}. */
    Map<String, StateTensor> export();

    /** Replaces all state by {@code state}, keyed as {@link #export} writes it. */
    void load(Map<String, StateTensor> state);

    /** Frees the state's native memory. */
    @Override
    void close();
}
