package io.qlora4j.model.format;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.safetensors.SafetensorsWriter;

/**
 * One linear weight {@code [out, in]} held in host memory in its base format: what {@link BaseFormat#quantize}
 * produces and {@link BaseFormat#read} reads. It goes on to the device ({@link #upload}), into a checkpoint
 * ({@link #write}), or back to float32 for a merge ({@link #dequantize}).
 */
public interface StoredWeight {

    /** The logical shape {@code [out, in]} (a copy). */
    long[] shape();

    /** Bytes of the stored form (what {@link BaseFormat#storedBytes} says for this shape). */
    long bytes();

    /**
     * The weight as float32, row-major, computed in Java: equal bit for bit to what the uploaded layer lends in
     * float32, so a merge on the host adds to exactly the weight training saw.
     */
    float[] dequantize();

    /**
     * Adds the Hugging Face state-dict entries of this weight for the module at {@code prefix} to {@code writer},
     * as transformers saves the format; {@code torchDtype} is the dtype of the model's float weights
     * ({@code bfloat16}, {@code float16}, {@code float32}) for formats that record or use it. The bias is the
     * caller's to write.
     */
    void write(SafetensorsWriter writer, String prefix, String torchDtype) throws ModelException;

    /**
     * The layer on {@code manager}'s device, with {@code bias} ({@code [out]} or null), which it then owns: a
     * layer that keeps the stored form and dequantizes per use, or a dense one for dense weights.
     */
    BaseLinear upload(NDArray bias, NDManager manager);
}
