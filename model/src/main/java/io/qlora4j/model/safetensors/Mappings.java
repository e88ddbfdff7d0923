package io.qlora4j.model.safetensors;

import java.io.IOException;
import java.lang.reflect.Field;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import sun.misc.Unsafe;

/**
 * Maps file ranges read-only and unmaps them on demand. Java otherwise unmaps only when the
 * garbage collector finds the buffer, so streaming a 60 GB checkpoint would keep every tensor
 * already read resident (and counted in RSS) until some later GC; releasing each mapping right
 * after its bytes are copied keeps the footprint near one chunk. {@code Unsafe.invokeCleaner}
 * (module jdk.unsupported) is the only supported way to do that on Java 17; the instance comes
 * from the {@code theUnsafe} field because {@code Unsafe.getUnsafe()} refuses application classes.
 */
final class Mappings {

    private static final Unsafe UNSAFE = loadUnsafe();

    private Mappings() {
    }

    /** A read-only little-endian mapping of {@code size} bytes (at most 2 GiB - 1) at {@code position}. */
    static MappedByteBuffer map(FileChannel channel, long position, long size) throws IOException {
        MappedByteBuffer buffer = channel.map(FileChannel.MapMode.READ_ONLY, position, size);
        buffer.order(ByteOrder.LITTLE_ENDIAN);
        return buffer;
    }

    /** Unmaps a buffer returned by {@link #map}; it and every view of it must not be touched again. */
    static void release(MappedByteBuffer buffer) {
        UNSAFE.invokeCleaner(buffer);
    }

    private static Unsafe loadUnsafe() {
        try {
            Field field = Unsafe.class.getDeclaredField("theUnsafe");
            field.setAccessible(true);
            return (Unsafe) field.get(null);
        } catch (ReflectiveOperationException e) {
            throw new ExceptionInInitializerError(e);
        }
    }
}
