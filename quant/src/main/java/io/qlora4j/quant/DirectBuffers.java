package io.qlora4j.quant;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Direct buffers for device arrays to wrap: on a CPU, DJL's PyTorch engine wraps a direct buffer without copying it,
 * so the buffer is the array's memory (and Java can read it, {@link HostDecoding}); elsewhere it is copied once.
 */
public final class DirectBuffers {
    private DirectBuffers() {}

    /** {@code values} zero-padded to {@code length} bytes in a new direct buffer. */
    public static ByteBuffer of(byte[] values, long length) {
        ByteBuffer buffer = ByteBuffer.allocateDirect(Math.toIntExact(length));
        buffer.put(values).rewind();
        return buffer;
    }

    /** {@code values} in a new direct buffer in native order. */
    public static ByteBuffer of(float[] values) {
        ByteBuffer buffer = ByteBuffer.allocateDirect(Math.multiplyExact(values.length, Float.BYTES))
                .order(ByteOrder.nativeOrder());
        buffer.asFloatBuffer().put(values);
        return buffer;
    }
}
