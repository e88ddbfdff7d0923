package io.qlora4j.trainer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.util.HashMap;
import java.util.Map;

/**
 * One block's base products kept by a selective recompute, by projection name, held in one flat array: one
 * allocation per block rather than one per product, which on a CPU is large enough for glibc to map it apart and
 * return it whole when the block's recompute frees it (small arrays would stay in its heap, fragmented).
 */
final class KeptProducts implements AutoCloseable {
    private final NDArray flat;
    private final Map<String, Long> offsets = new HashMap<>();
    private final Map<String, Shape> shapes = new HashMap<>();
    private long next;

    /** Room for {@code elements} elements of {@code type} in {@code manager}, belonging to no scope. */
    KeptProducts(NDManager manager, long elements, DataType type) {
        this.flat = manager.create(new Shape(elements), type);
        NDScope.unregister(flat);
    }

    /** Copies {@code product} in as the one of {@code name}. */
    void put(String name, NDArray product) {
        long n = product.size();
        if (next + n > flat.size()) {
            throw new IllegalStateException("no room for " + name + ": " + n + " elements, " + (flat.size() - next)
                    + " left");
        }
        flat.set(new NDIndex(next + ":" + (next + n)), product.reshape(n));
        offsets.put(name, next);
        shapes.put(name, product.getShape());
        next += n;
    }

    /** A view of the product kept for {@code name} in the current scope, or null when none was. */
    NDArray get(String name) {
        Long offset = offsets.get(name);
        if (offset == null) {
            return null;
        }
        Shape shape = shapes.get(name);
        return flat.get(new NDIndex(offset + ":" + (offset + shape.size()))).reshape(shape);
    }

    /** Frees the products. */
    @Override
    public void close() {
        flat.close();
    }
}
