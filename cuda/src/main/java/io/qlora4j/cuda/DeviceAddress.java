package io.qlora4j.cuda;

import ai.djl.ndarray.NDArray;
import ai.djl.pytorch.engine.PtNDArray;
import java.lang.reflect.Field;
import java.lang.reflect.Method;
import java.nio.ByteBuffer;
import org.bytedeco.javacpp.Pointer;

/**
 * The device address of a contiguous engine array, for copies the engine does not make itself. DJL's PyTorch
 * engine keeps the call that returns a tensor's {@code data_ptr()} as a direct buffer ({@code torchDirectByteBuffer})
 * package-private; it is reached by reflection and the buffer is only ever used as an address (its bytes live on
 * the device and are never read from Java). {@link PinnedHostPages} checks the address with a round trip before it
 * copies through it.
 */
final class DeviceAddress {
    private static final Object LIBRARY;
    private static final Method DATA;

    static {
        Object library = null;
        Method data = null;
        try {
            Class<?> type = Class.forName("ai.djl.pytorch.jni.PyTorchLibrary");
            Field lib = type.getDeclaredField("LIB");
            lib.setAccessible(true);
            library = lib.get(null);
            data = type.getDeclaredMethod("torchDirectByteBuffer", long.class);
            data.setAccessible(true);
        } catch (ReflectiveOperationException | RuntimeException e) {
            library = null;
            data = null;
        }
        LIBRARY = library;
        DATA = data;
    }

    private DeviceAddress() {}

    /** Whether this engine offers the call. */
    static boolean available() {
        return DATA != null;
    }

    /** The address of {@code array}'s first element as a pointer (the array must stay alive while it is used). */
    static Pointer of(NDArray array) {
        try {
            long handle = ((PtNDArray) array).getHandle();
            return new Pointer((ByteBuffer) DATA.invoke(LIBRARY, handle));
        } catch (ReflectiveOperationException e) {
            throw new IllegalStateException("cannot read the device address of an array: " + e, e);
        }
    }
}
