package io.qlora4j.quant;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;

/**
 * A weight matrix {@code [out, in]} held on a DJL device in a compact storage format (NF4 codes and block scales,
 * int8 codes and row scales, ...) that dequantizes there with NDArray ops. It is what a base format hands the
 * generic quantized linear layer of the {@code model} module: the layer only ever asks for the weight in a dtype,
 * uses it and closes it, so one class per format is all a new format writes for the device side.
 */
public interface DeviceWeight extends AutoCloseable {

    /** The logical shape {@code [out, in]} (a copy). */
    long[] shape();

    /**
     * The weight as {@code type} (float32 or float16), computed on the device in the order the format's upstream
     * tool uses for that dtype (each implementation says which). Intermediates are freed before returning; the
     * result belongs to the weight's manager and, if one is open on this thread, to the innermost
     * {@code NDScope}. The caller closes it when done.
     */
    NDArray dequantize(DataType type);

    /**
     * {@link #dequantize} for one product that the caller knows no autograd graph records (a graph-free pass, an input
     * gradient): a format may write it into this thread's {@link ScratchFloats} instead of fresh memory, so the result
     * is valid only until the next dequantization on this thread (a format may pass its {@link #dequantize} through
     * the same buffer). The caller closes it before asking for another weight and lets nothing keep it or a view of
     * it. The values are {@link #dequantize}'s, bit for bit. By default, {@link #dequantize}.
     */
    default NDArray dequantizeTransient(DataType type) {
        return dequantize(type);
    }

    /** Device bytes held (codes, scales, tables). */
    long bytes();

    /** Frees the device arrays; results already returned by {@link #dequantize} stay valid. */
    @Override
    void close();

    /** The bytes {@code arrays} hold on their device (null entries, such as tables a format may not need, skipped). */
    static long bytesOf(NDArray... arrays) {
        long total = 0;
        for (NDArray a : arrays) {
            if (a != null) {
                total += a.size() * a.getDataType().getNumOfBytes();
            }
        }
        return total;
    }
}
