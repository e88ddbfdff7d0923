package io.qlora4j.model.format;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.quant.gptq.AwqTensor;
import io.qlora4j.quant.gptq.GptqTensor;
import io.qlora4j.quant.gptq.NdGroupedTensor;
import java.util.function.Function;
import java.util.function.Supplier;

/**
 * A GPTQ or AWQ weight read from a checkpoint: dequantized on the host or uploaded to dequantize on the device per
 * use ({@link NdGroupedTensor}). Both formats are read-only, so neither writes its entries: a merged export writes
 * such a base's projections dense or in another format.
 *
 * @param name the format's name, for messages
 * @param shape {@code [out, in]}
 * @param bytes stored bytes
 * @param dense the host dequantization
 * @param device the upload
 */
record GroupedIntWeight(String name, long[] shape, long bytes, Supplier<float[]> dense,
        Function<NDManager, NdGroupedTensor> device) implements StoredWeight {

    static GroupedIntWeight of(GptqTensor t, long bytes) {
        return new GroupedIntWeight("GPTQ", new long[] {t.outFeatures(), t.inFeatures()}, bytes, t::dequantize,
                m -> NdGroupedTensor.upload(t, m));
    }

    static GroupedIntWeight of(AwqTensor t, long bytes) {
        return new GroupedIntWeight("AWQ", new long[] {t.outFeatures(), t.inFeatures()}, bytes, t::dequantize,
                m -> NdGroupedTensor.upload(t, m));
    }

    /**
     * Bytes a GPTQ or AWQ weight of {@code [out, in]} in {@code groups} groups of {@code bits}-wide codes holds on the
     * device ({@link NdGroupedTensor}): the packed codes as stored, one uint8 zero and one float16 scale per group and
     * output, an int32 group index per input, and the float32 tables that unpack a byte of codes ({@code [256, 8/bits]},
     * or three {@code [256, 8]} at 3 bits).
     */
    static long deviceBytes(long out, long in, long groups, int bits) {
        long tableFloats = 256L * (8 % bits == 0 ? 8 / bits : 8L * bits);
        return in * out * bits / 8 + groups * out * (1 + 2) + Integer.BYTES * in + Float.BYTES * tableFloats;
    }

    @Override
    public long[] shape() {
        return shape.clone();
    }

    @Override
    public float[] dequantize() {
        return dense.get();
    }

    /** Refused: the merged export writes such a base's projections dequantized or in another format. */
    @Override
    public void write(SafetensorsWriter writer, String prefix, String torchDtype) throws ModelException {
        throw new ModelException(name + " entries are not written: export the merged model dense or in another "
                + "format (export_quantization_bit / export_quantization_method)");
    }

    @Override
    public BaseLinear upload(NDArray bias, NDManager manager) {
        return new QuantizedLinear(device.apply(manager), bias);
    }
}
