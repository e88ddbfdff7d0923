package io.qlora4j.quant;

import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * One reusable direct buffer of float32 values per thread, for {@linkplain DeviceWeight#dequantizeTransient transient
 * dequantizations} on a CPU. A weight dequantized into fresh memory for every product pays for that memory twice:
 * the allocator maps it and the kernel faults in and zeroes every page before a value is written, which on a 1.1B
 * model's projections cost several times the decoding itself. Written again and again, the same buffer stays mapped
 * and warm. It grows to the largest weight asked for and is never shrunk: its size is that of one weight in float32,
 * which the step's peak held anyway while the weight was in use.
 */
public final class ScratchFloats {
    private static final ThreadLocal<ByteBuffer> BUFFER = new ThreadLocal<>();

    private ScratchFloats() {}

    /**
     * This thread's buffer, as exactly {@code floats} float32 values in native order. What an earlier call returned on
     * this thread is overwritten by whoever writes this one: the caller must be done with it.
     *
     * @throws IllegalArgumentException for more than {@code 2^31 - 1} bytes (one direct buffer's limit)
     */
    public static ByteBuffer borrow(long floats) {
        long bytes = floats * Float.BYTES;
        if (floats < 0 || bytes > Integer.MAX_VALUE) {
            throw new IllegalArgumentException(floats + " float32 values do not fit one direct buffer");
        }
        ByteBuffer buffer = BUFFER.get();
        if (buffer == null || buffer.capacity() < bytes) {
            buffer = ByteBuffer.allocateDirect((int) bytes);
            BUFFER.set(buffer);
        }
        return buffer.slice(0, (int) bytes).order(ByteOrder.nativeOrder());
    }
}
