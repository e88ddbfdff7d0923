package io.qlora4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import java.util.function.Function;

/**
 * A base model's linear layer held in its storage format (dense float, NF4, ...): what adapters wrap, and what
 * adapter variants that need the weight itself (DoRA's row norms, PiSSA's and LoftQ's decompositions, merges)
 * read through {@link #withWeight}.
 */
public interface BaseLinear extends LinearLayer {
    /**
     * Applies {@code use} to the weight {@code [out, in]} as {@code type} (dequantized on the layer's device for a
     * quantized format) and returns its result. The array is lent for the call only: {@code use} must neither
     * close nor modify it, nor keep it beyond the call.
     */
    <R> R withWeight(DataType type, Function<NDArray, R> use);

    /**
     * The weight {@code [out, in]} row-major as float32 values on the Java heap, for host-side quantizers: by default
     * {@link #withWeight} in float32 read back; a 16-bit layer widens on the heap instead, so that no float32 copy of
     * the matrix is made on the device (nor left behind in its allocator).
     */
    default float[] weightFloats() {
        return withWeight(DataType.FLOAT32, NDArray::toFloatArray);
    }

    /** The bias {@code [out]}, or null for none. */
    NDArray bias();
}
