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
