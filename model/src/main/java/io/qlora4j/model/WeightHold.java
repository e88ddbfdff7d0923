package io.qlora4j.model;

/**
 * A layer's weight kept ready for products (widened or dequantized once) until closed: what
 * {@link LinearLayer#hold} returns. Closing it frees the prepared copy; the layer goes back to preparing its
 * weight for each product.
 */
@FunctionalInterface
public interface WeightHold extends AutoCloseable {
    /** The hold of a layer with nothing to prepare (or already held by an outer caller): closing it does nothing. */
    WeightHold NONE = () -> { };

    /** Frees what the hold keeps. */
    @Override
    void close();
}
