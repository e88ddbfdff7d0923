package io.qlora4j.model;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * An embedding table held as a plain array {@code [vocab, hidden]} (float32 on the CPU): the form
 * full fine-tuning trains, since the lookup is differentiable with respect to the table.
 */
public final class DenseEmbedding implements TokenEmbedding {
    private final NDArray weight;

    /** Wraps {@code weight [vocab, hidden]}; the embedding owns it. */
    public DenseEmbedding(NDArray weight) {
        if (weight.getShape().dimension() != 2) {
            throw new IllegalArgumentException("embedding table must be [vocab, hidden], got " + weight.getShape());
        }
        this.weight = weight;
    }

    /** The table array itself (shared, not copied): the parameter full fine-tuning trains. */
    public NDArray weight() {
        return weight;
    }

    @Override
    public NDArray lookup(NDArray ids) {
        NDArray index = ids.toType(DataType.INT64, false);
        NDArray rows = weight.get(index);
        if (index != ids) {
            index.close();
        }
        rows.attach(ids.getManager());
        return rows;
    }

    @Override
    public Shape shape() {
        return weight.getShape();
    }

    /** A {@link DenseLinear} reading this very array (no copy). */
    @Override
    public LinearLayer asLinear() {
        return new DenseLinear(weight, null);
    }

    @Override
    public long bytes() {
        return weight.size() * weight.getDataType().getNumOfBytes();
    }

    @Override
    public void close() {
        weight.close();
    }
}
