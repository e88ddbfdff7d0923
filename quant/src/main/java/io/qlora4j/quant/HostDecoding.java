package io.qlora4j.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/**
 * A device weight decoded by Java on a CPU, where DJL wraps a direct buffer without copying it: the codes and scales
 * a format uploads are direct buffers Java reads as they are, and the float32 weight is written into this thread's
 * {@link ScratchFloats} on the caller's threads ({@link BlockParallel}). A format's NDArray ops write every
 * intermediate (widened codes, looked-up values, the scaled result) into fresh memory that the kernel faults in and
 * zeroes first; the warm scratch buffer pays that once.
 *
 * <p>To decode a format here: keep its codes and scales in direct buffers that its device arrays wrap on a CPU
 * ({@link DirectBuffers}), write
 * a {@link Decoder} that computes the same float32 operations per element as its NDArray ops, keep a {@code
 * HostDecoding} of it where the weight is on a CPU ({@link #readable}), and return its {@link #intoScratch} from
 * {@link DeviceWeight#dequantizeTransient} (and, where the ops make more than one fresh array, its {@link #owned} from
 * {@link DeviceWeight#dequantize}) when float32 is asked for.
 */
public final class HostDecoding {

    /** Writes the float32 values of a weight's units {@code [from, to)} into {@code out}, at absolute positions. */
    @FunctionalInterface
    public interface Decoder {
        /** Decodes units {@code [from, to)}; threads call it for disjoint ranges of the same buffer. */
        void decode(FloatBuffer out, int from, int to);
    }

    private final NDManager owner;
    private final long[] shape;
    private final int units;
    private final int unitElements;
    private final Decoder decoder;

    /**
     * The decoding of a weight of {@code shape} into arrays of {@code owner}: {@code units} units of about {@code
     * unitElements} values each, which {@code decoder} writes and threads share out.
     */
    public HostDecoding(NDManager owner, long[] shape, int units, int unitElements, Decoder decoder) {
        this.owner = owner;
        this.shape = shape.clone();
        this.units = units;
        this.unitElements = unitElements;
        this.decoder = decoder;
    }

    /**
     * The weight decoded into this thread's {@link ScratchFloats} and wrapped without a copy: valid until the next use
     * of the scratch buffer on this thread ({@link DeviceWeight#dequantizeTransient}).
     */
    public NDArray intoScratch() {
        ByteBuffer out = ScratchFloats.borrow(Shapes.numel(shape));
        decodeInto(out.asFloatBuffer());
        return owner.create(out, new Shape(shape), DataType.FLOAT32);
    }

    /**
     * The weight decoded straight into a fresh uninitialized array of its own: one array, neither zeroed nor copied.
     * DJL's PyTorch engine lends the memory of a contiguous CPU array to Java as a direct buffer ({@code
     * toByteBuffer(true)}: {@code JniUtils.getByteBuffer} copies only a sparse or non-contiguous array, and a fresh
     * one is neither). While {@link RecordedWeights} are open on this thread, the array is a slot of theirs.
     */
    public NDArray owned() {
        NDArray lent = RecordedWeights.lend(owner, shape);
        NDArray out = lent != null ? lent : owner.create(new Shape(shape), DataType.FLOAT32);
        decodeInto(out.toByteBuffer(true).order(ByteOrder.nativeOrder()).asFloatBuffer());
        return out;
    }

    private void decodeInto(FloatBuffer values) {
        BlockParallel.forEachRange(units, unitElements, Runtime.getRuntime().availableProcessors(),
                (from, to) -> decoder.decode(values, from, to));
    }

    /** Whether {@code manager}'s arrays are CPU memory that Java can read and DJL wraps without a copy. */
    public static boolean readable(NDManager manager) {
        return !manager.getDevice().isGpu();
    }
}
