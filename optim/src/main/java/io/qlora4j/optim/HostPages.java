package io.qlora4j.optim;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.util.cuda.CudaUtils;
import java.lang.management.MemoryUsage;
import java.nio.ByteBuffer;
import java.util.function.Consumer;

/**
 * Where the paged optimizer keeps the pages that are not on the device, and how a page's bytes cross between the
 * two: host buffers, the copies to and from device arrays, and the device's free and total memory that sets the
 * default budget. The default is plain direct buffers and the engine's own copies; on CUDA the {@code cuda} module's
 * pinned pages ({@code cudaHostAlloc}, copies on a side stream, {@code cudaMemGetInfo}) replace it. Whatever the
 * implementation, a page's bytes are copied exactly, so training is bit-identical with any of them.
 */
public interface HostPages extends AutoCloseable {
    /** The class of the CUDA implementation, loaded by name so that nothing of it loads on a CPU. */
    String CUDA_IMPLEMENTATION = "io.qlora4j.cuda.PinnedHostPages";

    /** A host buffer of {@code bytes} in native byte order, position 0, limit {@code bytes}. */
    ByteBuffer allocate(int bytes);

    /** Gives back a buffer from {@link #allocate} that is no longer used. */
    void free(ByteBuffer buffer);

    /**
     * A new array of {@code shape} and {@code type} on {@code manager}'s device holding a copy of the bytes from
     * {@code src}'s position on (the position does not move).
     */
    default NDArray upload(NDManager manager, Shape shape, DataType type, ByteBuffer src) {
        return DeviceBytes.upload(manager, shape, type, src);
    }

    /** Copies the bytes of {@code array} to {@code dst} at its position, advancing it. */
    default void download(NDArray array, ByteBuffer dst) {
        DeviceBytes.download(array, dst);
    }

    /** The device's memory as {@code {free, total}} bytes. */
    default long[] deviceMemory(Device device) {
        MemoryUsage memory = CudaUtils.getGpuMemory(device);
        return new long[] {memory.getMax() - memory.getCommitted(), memory.getMax()};
    }

    /** One line for logs: which memory and copies these are. */
    String describe();

    /** Releases what the implementation holds (buffers still allocated, streams). */
    @Override
    void close();

    /** Direct buffers and the engine's copies: the CPU's pages, and the fallback on CUDA. */
    static HostPages direct() {
        return DirectHostPages.INSTANCE;
    }

    /**
     * The pages for a paged optimizer on {@code device}: on a GPU the pinned pages of the {@code cuda} module when it and
     * its native library load (else direct buffers, with one line to {@code warn} saying why); on the CPU direct
     * buffers, without touching the {@code cuda} module.
     */
    static HostPages forDevice(Device device, Consumer<String> warn) {
        if (!device.isGpu()) {
            return direct();
        }
        try {
            return (HostPages) Class.forName(CUDA_IMPLEMENTATION).getMethod("open", Device.class).invoke(null, device);
        } catch (ReflectiveOperationException | LinkageError | RuntimeException e) {
            Throwable cause = e.getCause() != null ? e.getCause() : e;
            warn.accept("pinned optimizer pages are not available (" + cause + "); paging through ordinary host memory");
            return direct();
        }
    }
}
