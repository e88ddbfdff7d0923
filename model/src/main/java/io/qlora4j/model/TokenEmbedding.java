package io.qlora4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.Shape;

/**
 * A model's token embedding table {@code [vocab, hidden]}: token ids in, their rows out. One
 * implementation per storage form (dense float32, exact float16 rows), so that the frozen table of
 * a QLoRA run can be kept in 16 bits while a fully trained one stays a float32 parameter.
 */
public interface TokenEmbedding extends AutoCloseable {
    /** The rows of integer {@code ids [...]} as float32 {@code [..., hidden]}, in the manager of ids. */
    NDArray lookup(NDArray ids);

    /** {@code [vocab, hidden]}. */
    Shape shape();

    /** The same matrix as an output layer {@code hidden -> vocab}, for tied embeddings. */
    LinearLayer asLinear();

    /** Bytes the table keeps resident. */
    long bytes();

    /** Releases the table's arrays. */
    @Override
    void close();
}
