package io.qlora4j.optim;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;

/**
 * Byte copies between state pages on the device and host buffers. DJL's PyTorch engine makes a
 * CPU array from a direct buffer by aliasing the buffer, and hands a CPU array's bytes out as an
 * aliasing buffer; here every transfer is a real copy, so a page on the device never shares memory
 * with its host copy, on the CPU as on a GPU.
 */
final class DeviceBytes {

    private DeviceBytes() {}

    /** A new zero-filled device array for {@code part}. */
    static NDArray zeros(NDManager manager, PagePart part) {
        return manager.zeros(new Shape(part.count()), part.type());
    }

    /** A new device array holding a copy of {@code src}'s remaining {@code part.bytes()} bytes. */
    static NDArray upload(NDManager manager, PagePart part, ByteBuffer src) {
        return upload(manager, new Shape(part.count()), part.type(), src);
    }

    /** A new device array of {@code shape} and {@code type} holding a copy of the bytes {@code src} has left. */
    static NDArray upload(NDManager manager, Shape shape, DataType type, ByteBuffer src) {
        ByteBuffer bytes = src.slice().limit(Math.toIntExact(shape.size() * type.getNumOfBytes()));
        if (!onCpu(manager.getDevice())) {
            // off the CPU the engine copies the buffer to the device itself
            return manager.create(bytes.order(ByteOrder.nativeOrder()), shape, type);
        }
        NDArray array = manager.create(shape, type);
        array.toByteBuffer(true).put(bytes);
        return array;
    }

    /** Copies the array's bytes to {@code dst} at its position, advancing it. */
    static void download(NDArray array, ByteBuffer dst) {
        if (onCpu(array.getDevice())) {
            dst.put(array.toByteBuffer(true));
            return;
        }
        try (NDArray host = array.toDevice(Device.cpu(), true)) {
            dst.put(host.toByteBuffer(true));
        }
    }

    /**
     * The array's bytes in native order: on the CPU a view valid while the array lives, elsewhere
     * a copy.
     */
    static ByteBuffer read(NDArray array) {
        if (onCpu(array.getDevice())) {
            return array.toByteBuffer(true).order(ByteOrder.nativeOrder());
        }
        ByteBuffer copy =
                ByteBuffer.allocateDirect(Math.toIntExact(array.size() * array.getDataType().getNumOfBytes()))
                        .order(ByteOrder.nativeOrder());
        download(array, copy);
        return copy.flip();
    }

    /** Overwrites the array's contents with the bytes {@code src} holds (exactly its size). */
    static void write(NDArray array, ByteBuffer src) {
        if (onCpu(array.getDevice())) {
            array.toByteBuffer(true).put(src.duplicate());
        } else {
            array.set(src.duplicate().order(ByteOrder.nativeOrder()));
        }
    }

    private static boolean onCpu(Device device) {
        return Device.Type.CPU.equals(device.getDeviceType());
    }
}
