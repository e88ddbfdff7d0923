package io.qlora4j.model.generation;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.decoder.AttentionContext;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.KvCache;
import io.qlora4j.model.decoder.RopeScaling;
import java.util.Arrays;

/**
 * Rows of equal length (no padding) fed to a model through a {@link KvCache}, as generation feeds them: the prompts
 * once, then each row's chosen token; every call returns the logits of each row's last position. The tokens fed so
 * far are kept, so that a call whose cache has gone stale ({@link RopeScaling#invalidatesCache}: a longrope model
 * reaching beyond its original context) runs the whole rows again on an empty cache, as transformers'
 * {@code generate} does for Phi-3; the logits are then those of a forward of the whole rows.
 */
public final class CachedDecoding implements AutoCloseable {
    private final CausalLM model;
    private final int batch;
    private final NDManager manager;
    private final KvCache cache;
    private long[][] rows;
    private int length;

    /** Starts an empty cache for {@code batch} rows under the model's manager. */
    public CachedDecoding(CausalLM model, int batch) {
        if (batch < 1) {
            throw new IllegalArgumentException("batch must be >= 1, got " + batch);
        }
        this.model = model;
        this.batch = batch;
        this.manager = model.manager().newSubManager();
        this.cache = model.newCache(manager);
        this.rows = new long[batch][16];
    }

    /**
     * Appends {@code tokens} (row-major {@code [batch, n]}, n >= 1) to the rows, runs them, and returns the logits
     * of each row's last position, row-major {@code [batch, vocab]}.
     */
    public float[] next(long[] tokens) {
        if (tokens.length == 0 || tokens.length % batch != 0) {
            throw new IllegalArgumentException(tokens.length + " tokens do not fill " + batch + " rows");
        }
        int added = tokens.length / batch;
        append(tokens, added);
        RopeScaling rope = model.config().ropeScaling();
        long[] input = tokens;
        int seqLen = added;
        if (rope != null && rope.invalidatesCache(cache.length(), length)) {
            cache.clear();
            input = whole();
            seqLen = length;
        }
        try (NDManager step = manager.newSubManager()) {
            NDArray ids = step.create(input, new Shape(batch, seqLen));
            AttentionContext context = model.context(step, seqLen, cache.length(), null);
            NDArray hidden = model.hiddenStates(ids, context, cache);
            return model.finalNormAndHead(hidden.get(":, -1:, :")).toFloatArray();
        }
    }

    private void append(long[] tokens, int added) {
        if (length + added > rows[0].length) {
            int capacity = Math.max(length + added, 2 * rows[0].length);
            for (int r = 0; r < batch; r++) {
                rows[r] = Arrays.copyOf(rows[r], capacity);
            }
        }
        for (int r = 0; r < batch; r++) {
            System.arraycopy(tokens, r * added, rows[r], length, added);
        }
        length += added;
    }

    /** Every token fed so far, row-major {@code [batch, length]}. */
    private long[] whole() {
        long[] all = new long[batch * length];
        for (int r = 0; r < batch; r++) {
            System.arraycopy(rows[r], 0, all, r * length, length);
        }
        return all;
    }

    /** Releases the cache. */
    @Override
    public void close() {
        cache.close();
        manager.close();
    }
}
