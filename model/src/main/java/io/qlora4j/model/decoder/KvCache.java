package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;

/**
 * The keys (after RoPE) and values of every layer for the tokens already processed, so generation feeds
 * only the new tokens; positions continue from {@link #length()}. Arrays live in the cache's own
 * sub-manager and die with {@link #close()}.
 */
public final class KvCache implements AutoCloseable {
    private final NDManager manager;
    private final NDArray[] keys;
    private final NDArray[] values;
    private int length;

    /** Creates an empty cache for {@code layers} layers whose arrays live in a sub-manager of {@code parent}. */
    public KvCache(NDManager parent, int layers) {
        this.manager = parent.newSubManager();
        this.keys = new NDArray[layers];
        this.values = new NDArray[layers];
    }

    /** The number of tokens cached (the position of the next token). */
    public int length() {
        return length;
    }

    /** Bytes held by the cached keys and values. */
    public long bytes() {
        long total = 0;
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] != null) {
                total += (keys[i].size() + values[i].size()) * keys[i].getDataType().getNumOfBytes();
            }
        }
        return total;
    }

    /**
     * Appends one layer's new keys and values {@code [b, kv_heads, s, head_dim]} and returns the whole
     * history {@code [b, kv_heads, length + s, head_dim]} (owned by the cache).
     */
    NDArray[] append(int layer, NDArray key, NDArray value) {
        keys[layer] = grow(keys[layer], key);
        values[layer] = grow(values[layer], value);
        return new NDArray[] {keys[layer], values[layer]};
    }

    private NDArray grow(NDArray old, NDArray added) {
        NDArray full = old == null ? added : old.concat(added, 2);
        NDScope.unregister(full);
        full.attach(manager);
        if (old != null) {
            old.close();
        }
        return full;
    }

    /** Drops every cached key and value: the next call starts again at position 0. */
    public void clear() {
        for (int i = 0; i < keys.length; i++) {
            if (keys[i] != null) {
                keys[i].close();
                values[i].close();
                keys[i] = null;
                values[i] = null;
            }
        }
        length = 0;
    }

    /** Records that a forward call appended {@code tokens} tokens to every layer. */
    void advance(int tokens) {
        length += tokens;
    }

    /** Releases all cached arrays. */
    @Override
    public void close() {
        manager.close();
    }
}
