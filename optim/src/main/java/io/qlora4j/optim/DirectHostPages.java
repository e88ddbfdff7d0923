package io.qlora4j.optim;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/** {@link HostPages} in plain direct buffers with the engine's copies: the CPU's pages, and the fallback on CUDA. */
final class DirectHostPages implements HostPages {
    static final DirectHostPages INSTANCE = new DirectHostPages();

    private DirectHostPages() {}

    @Override
    public ByteBuffer allocate(int bytes) {
        return ByteBuffer.allocateDirect(bytes).order(ByteOrder.nativeOrder());
    }

    @Override
    public void free(ByteBuffer buffer) {
        // the garbage collector frees direct buffers
    }

    @Override
    public String describe() {
        return "direct buffers, engine copies";
    }

    @Override
    public void close() {
        // nothing held
    }
}
