package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.util.List;
import java.util.Map;

/**
 * How a page holds AdamW's two moments for a run of a parameter's elements: the device arrays it
 * is made of, how the float32 working moments come out of them and go back, and the checkpoint
 * tensors of a whole parameter. One implementation per number format.
 */
interface PageFormat {

    /** The elements a page of {@code pageBytes} bytes holds; at least one. */
    long pageElements(long pageBytes);

    /** The device arrays of a page of {@code elements} elements; all-zero bytes are fresh state. */
    List<PagePart> parts(int elements);

    /** The float32 working moments of a resident page, shaped like {@code like}. */
    Moments open(NDArray[] page, NDArray like);

    /** Stores the updated working moments back into the page. */
    void close(NDArray[] page, Moments working);

    /** The checkpoint key suffixes this format writes and reads, after {@code <param>.}. */
    List<String> suffixes();

    /**
     * Adds a parameter's state to {@code out} as checkpoint tensors, from each page's host bytes
     * (the parts back to back, in page order).
     */
    void export(String param, Shape shape, StateLayout layout, List<ByteBuffer> pages,
            Map<String, StateTensor> out);

    /**
     * The parameter shape that checkpoint tensors keyed by suffix (all of {@link #suffixes}
     * present) describe, after checking they agree with each other.
     */
    Shape shape(String param, Map<String, StateTensor> tensors);

    /** Cuts checkpoint tensors into pages' host bytes (direct, native order) per the layout. */
    List<ByteBuffer> pages(String param, Map<String, StateTensor> tensors, StateLayout layout);
}
