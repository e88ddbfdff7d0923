package io.qlora4j.cuda;

import static org.bytedeco.cuda.global.cudart.cudaEventCreateWithFlags;
import static org.bytedeco.cuda.global.cudart.cudaEventDestroy;
import static org.bytedeco.cuda.global.cudart.cudaEventDisableTiming;
import static org.bytedeco.cuda.global.cudart.cudaEventRecord;
import static org.bytedeco.cuda.global.cudart.cudaFreeHost;
import static org.bytedeco.cuda.global.cudart.cudaGetErrorString;
import static org.bytedeco.cuda.global.cudart.cudaHostAlloc;
import static org.bytedeco.cuda.global.cudart.cudaHostAllocDefault;
import static org.bytedeco.cuda.global.cudart.cudaMemGetInfo;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyAsync;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyDeviceToHost;
import static org.bytedeco.cuda.global.cudart.cudaMemcpyHostToDevice;
import static org.bytedeco.cuda.global.cudart.cudaSetDevice;
import static org.bytedeco.cuda.global.cudart.cudaStreamCreateWithFlags;
import static org.bytedeco.cuda.global.cudart.cudaStreamDestroy;
import static org.bytedeco.cuda.global.cudart.cudaStreamNonBlocking;
import static org.bytedeco.cuda.global.cudart.cudaStreamSynchronize;
import static org.bytedeco.cuda.global.cudart.cudaStreamWaitEvent;
import static org.bytedeco.cuda.global.cudart.cudaSuccess;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.optim.HostPages;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.IdentityHashMap;
import java.util.Map;
import org.bytedeco.cuda.cudart.CUevent_st;
import org.bytedeco.cuda.cudart.CUstream_st;
import org.bytedeco.javacpp.BytePointer;
import org.bytedeco.javacpp.Pointer;
import org.bytedeco.javacpp.SizeTPointer;

/**
 * The paged optimizer's host pages in pinned (page-locked) memory from {@code cudaHostAlloc}, copied to and from the
 * device with {@code cudaMemcpyAsync} on a non-blocking side stream, and the device's memory from
 * {@code cudaMemGetInfo}: the CUDA runtime the engine already loaded, reached through {@code org.bytedeco:cuda}.
 *
 * <p>How a pinned buffer reaches libtorch: {@code cudaHostAlloc} returns a host address, which JavaCPP wraps as a
 * {@link BytePointer} of the page's capacity and hands out as a direct {@link ByteBuffer}
 * ({@link Pointer#asByteBuffer}). The device array is an ordinary array of the engine (its caching allocator); its
 * device address is read once per copy from the engine ({@link DeviceAddress}). An upload first makes the side stream
 * wait for everything already queued on the default stream (an event recorded there), so a block the caching
 * allocator just handed out is no longer read by earlier kernels; it then copies and waits for the side stream on the
 * calling thread, which is the optimizer's prefetch thread: the main thread's step goes on meanwhile. A download
 * waits the same way for the update kernels before copying the page out. When the address cannot be read the copies
 * fall back to the engine's own, still from pinned memory.
 *
 * <p>Loaded only by {@link HostPages#forDevice} on a GPU; nothing of it, nor of {@code org.bytedeco}, loads on a CPU.
 */
public final class PinnedHostPages implements HostPages {
    private final int device;
    private final CUstream_st stream = new CUstream_st();
    private final CUevent_st queued = new CUevent_st();
    private final Map<ByteBuffer, Pointer> allocations = new IdentityHashMap<>();
    private final boolean sideStream;

    private PinnedHostPages(int device) {
        this.device = device;
        check(cudaSetDevice(device), "cudaSetDevice");
        check(cudaStreamCreateWithFlags(stream, cudaStreamNonBlocking), "cudaStreamCreateWithFlags");
        check(cudaEventCreateWithFlags(queued, cudaEventDisableTiming), "cudaEventCreateWithFlags");
        this.sideStream = DeviceAddress.available() && roundTrips(Device.gpu(device));
    }

    /**
     * Whether a page copied to the device on the side stream comes back byte for byte through the engine's own copy:
     * the check that the device addresses read from the engine are right before any optimizer state goes through them.
     */
    private boolean roundTrips(Device gpu) {
        ByteBuffer page = allocate(4096);
        try (NDManager manager = NDManager.newBaseManager(gpu, "PyTorch")) {
            for (int i = 0; i < 4096; i++) {
                page.put(i, (byte) (i * 31 + 7));
            }
            NDArray array;
            try {
                array = uploadOnSideStream(manager, new Shape(1024), DataType.FLOAT32, page.duplicate());
            } catch (RuntimeException e) {
                return false;
            }
            ByteBuffer back = ByteBuffer.allocateDirect(4096).order(ByteOrder.nativeOrder());
            HostPages.super.download(array, back);
            return back.flip().equals(page.duplicate().clear());
        } finally {
            free(page);
        }
    }

    /** Pinned pages for the GPU {@code device}, called by name from {@link HostPages#forDevice}. */
    public static HostPages open(Device device) {
        if (!device.isGpu()) {
            throw new IllegalArgumentException("pinned host pages need a GPU, not " + device);
        }
        return new PinnedHostPages(device.getDeviceId());
    }

    @Override
    public synchronized ByteBuffer allocate(int bytes) {
        Pointer host = new Pointer();
        check(cudaHostAlloc(host, bytes, cudaHostAllocDefault), "cudaHostAlloc of " + bytes + " bytes");
        ByteBuffer buffer = new BytePointer(host).capacity(bytes).asByteBuffer().order(ByteOrder.nativeOrder());
        allocations.put(buffer, host);
        return buffer;
    }

    @Override
    public synchronized void free(ByteBuffer buffer) {
        Pointer host = allocations.remove(buffer);
        if (host != null) {
            check(cudaFreeHost(host), "cudaFreeHost");
        }
    }

    @Override
    public NDArray upload(NDManager manager, Shape shape, DataType type, ByteBuffer src) {
        if (!sideStream) {
            return HostPages.super.upload(manager, shape, type, src);
        }
        return uploadOnSideStream(manager, shape, type, src);
    }

    private NDArray uploadOnSideStream(NDManager manager, Shape shape, DataType type, ByteBuffer src) {
        long bytes = shape.size() * type.getNumOfBytes();
        NDArray array = manager.create(shape, type);
        afterQueuedWork();
        check(cudaMemcpyAsync(DeviceAddress.of(array), new Pointer(src.slice()), bytes, cudaMemcpyHostToDevice, stream),
                "cudaMemcpyAsync to the device");
        check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
        return array;
    }

    @Override
    public void download(NDArray array, ByteBuffer dst) {
        if (!sideStream || !dst.isDirect()) {
            HostPages.super.download(array, dst);
            return;
        }
        long bytes = array.size() * array.getDataType().getNumOfBytes();
        afterQueuedWork();
        check(cudaMemcpyAsync(new Pointer(dst.slice()), DeviceAddress.of(array), bytes, cudaMemcpyDeviceToHost, stream),
                "cudaMemcpyAsync to the host");
        check(cudaStreamSynchronize(stream), "cudaStreamSynchronize");
        dst.position(dst.position() + Math.toIntExact(bytes));
    }

    /** Makes the side stream wait for everything queued on the default stream so far. */
    private void afterQueuedWork() {
        check(cudaEventRecord(queued, null), "cudaEventRecord");
        check(cudaStreamWaitEvent(stream, queued, 0), "cudaStreamWaitEvent");
    }

    @Override
    public long[] deviceMemory(Device gpu) {
        try (SizeTPointer free = new SizeTPointer(1); SizeTPointer total = new SizeTPointer(1)) {
            check(cudaSetDevice(gpu.getDeviceId()), "cudaSetDevice");
            check(cudaMemGetInfo(free, total), "cudaMemGetInfo");
            return new long[] {free.get(), total.get()};
        }
    }

    @Override
    public String describe() {
        return "pinned host memory (cudaHostAlloc), " + (sideStream ? "copies on a side stream"
                : "engine copies (the device address of an array could not be read)") + ", GPU " + device;
    }

    @Override
    public synchronized void close() {
        for (Pointer host : allocations.values()) {
            cudaFreeHost(host);
        }
        allocations.clear();
        cudaEventDestroy(queued);
        cudaStreamDestroy(stream);
    }

    private static void check(int status, String what) {
        if (status != cudaSuccess) {
            throw new IllegalStateException(what + " failed: " + cudaGetErrorString(status).getString());
        }
    }
}
