package io.qlora4j.optim;

import ai.djl.ndarray.NDArray;
import java.util.List;

/**
 * How a page holds AdamW's two moments for a run of a parameter's elements: the device arrays it
 * is made of, how the float32 working moments come out of them and go back, and the checkpoint
 * tensors of a whole parameter. One implementation per number format.
 */
interface PageFormat {

    /** The elements a page of {@code pageBytes} bytes holds; at least one. */
    long pageElements(long pageBytes);

    /** Bytes of the state of a tensor of {@code elements} elements, all its pages together. */
    long bytes(long elements);

    /** The device arrays of a page of {@code elements} elements; all-zero bytes are fresh state. */
    List<PagePart> parts(int elements);

    /** The float32 working moments of a resident page, shaped like {@code like}. */
    Moments open(NDArray[] page, NDArray like);

    /** Stores the updated working moments back into the page. */
    void close(NDArray[] page, Moments working);

    /**
     * The checkpoint key suffix of each page part, after {@code <param>.}: a parameter's checkpoint
     * tensor for part {@code i} is part {@code i} of all its pages back to back, shaped like the
     * parameter when the part has one value per element.
     */
    List<String> suffixes();
}
