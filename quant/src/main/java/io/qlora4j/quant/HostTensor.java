package io.qlora4j.quant;

/**
 * A quantized weight held in host memory that can say its logical shape and stored size and turn itself back into
 * float32 in Java. Formats whose stored weight is one such tensor share everything but writing and uploading it.
 */
public interface HostTensor {

    /** The logical shape {@code [out, in]}. */
    long[] shape();

    /** Bytes of the stored form, every scale and side table included. */
    long bytes();

    /** The float32 weight, row-major, bit for bit what the device decode gives in float32. */
    float[] dequantize();
}
