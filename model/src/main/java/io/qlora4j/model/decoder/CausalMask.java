package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * The additive causal mask of transformers' decoders (masking_utils): query {@code i} (absolute index
 * {@code past + i}) sees key {@code j} iff {@code j <= past + i}, the key is not padding, and, with a
 * sliding window {@code w}, {@code past + i - j < w}. A key mask may also number packed examples
 * (1, 2, ... within a row, 0 for padding): a query then sees only keys of its own example. Allowed entries are 0, the others
 * {@code -Float.MAX_VALUE} (transformers' {@code finfo.min}), so a fully masked row stays finite.
 */
final class CausalMask {
    private CausalMask() {}

    /**
     * Builds the mask {@code [b or 1, 1, seqLen, past + seqLen]} in {@code manager}; {@code keyMask} is null
     * or {@code [b, past + seqLen]} with 0 for padding and, for real tokens, 1 or the number of the packed
     * example they belong to.
     */
    static NDArray build(NDManager manager, long seqLen, long past, NDArray keyMask, Integer slidingWindow) {
        long total = past + seqLen;
        if (keyMask != null && (keyMask.getShape().dimension() != 2 || keyMask.getShape().get(1) != total)) {
            throw new IllegalArgumentException(
                    "attention mask must be [batch, " + total + "], got " + keyMask.getShape());
        }
        return Scoped.run(() -> {
            NDArray query = manager.arange((float) past, (float) total, 1f, DataType.FLOAT32).reshape(seqLen, 1);
            NDArray key = manager.arange(0f, (float) total, 1f, DataType.FLOAT32).reshape(1, total);
            NDArray allowed = key.lte(query);
            if (slidingWindow != null) {
                allowed = allowed.logicalAnd(query.sub(key).lt(slidingWindow));
            }
            allowed = allowed.reshape(1, 1, seqLen, total);
            if (keyMask != null) {
                long b = keyMask.getShape().get(0);
                NDArray keys = keyMask.reshape(new Shape(b, 1, 1, total));
                NDArray queries = keyMask.get(":, {}:", past).reshape(new Shape(b, 1, seqLen, 1));
                allowed = allowed.logicalAnd(keys.neq(0)).logicalAnd(keys.eq(queries));
            }
            return allowed.toType(DataType.FLOAT32, false).sub(1f).mul(Float.MAX_VALUE);
        });
    }
}
