package io.qlora4j.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.ArrayList;
import java.util.List;

/**
 * The memory of the weights a recomputed block's graph keeps, handed from one block to the next within a backward
 * pass. Under recompute every block is recomputed with a graph that keeps its projections' dequantized weights until
 * the block's backward is done, and the next block needs the same sizes again: on a CPU a fresh array for each is
 * memory the kernel faults in and zeroes first, which at the 1.1B shape's 128 tokens cost more than decoding into it.
 * While one is open on a thread, {@link HostDecoding#owned} decodes into its slots instead, the n-th weight of a block
 * into the n-th slot; {@link #nextBlock} starts handing them out again from the first.
 *
 * <p>The caller promises what makes the reuse safe: nothing a block was lent is referenced once that block's backward
 * is done (its graph is released by the backward, its arrays closed with its scope), and it calls {@link #nextBlock}
 * only then. The slots are freed when this is closed. The decoded values are the same, so the bits are too.
 */
public final class RecordedWeights implements AutoCloseable {
    private static final ThreadLocal<RecordedWeights> OPEN = new ThreadLocal<>();

    private final List<NDArray> slots = new ArrayList<>();
    private int next;

    private RecordedWeights() {}

    /** Opens the reuse on this thread, for one backward pass; closing it frees the slots. */
    public static RecordedWeights open() {
        if (OPEN.get() != null) {
            throw new IllegalStateException("recorded weights are already reused on this thread");
        }
        RecordedWeights weights = new RecordedWeights();
        OPEN.set(weights);
        return weights;
    }

    /** Hands the slots out again from the first: what the previous block was lent is no longer referenced. */
    public void nextBlock() {
        next = 0;
    }

    /**
     * A float32 array of {@code shape} in the next slot of this thread's open reuse (a view of the slot, which the
     * caller closes), or null when none is open. A slot too small for {@code shape} is replaced by one in
     * {@code manager}.
     */
    static NDArray lend(NDManager manager, long[] shape) {
        RecordedWeights open = OPEN.get();
        return open == null ? null : open.slot(manager, shape);
    }

    private NDArray slot(NDManager manager, long[] shape) {
        long size = Shapes.numel(shape);
        if (next == slots.size() || slots.get(next).size() < size) {
            NDArray slot = manager.create(new Shape(size), DataType.FLOAT32);
            NDScope.unregister(slot);
            if (next == slots.size()) {
                slots.add(slot);
            } else {
                slots.set(next, slot).close();
            }
        }
        return slots.get(next++).get(new NDIndex("0:{}", size)).reshape(new Shape(shape));
    }

    @Override
    public void close() {
        OPEN.remove();
        slots.forEach(NDArray::close);
        slots.clear();
    }
}
