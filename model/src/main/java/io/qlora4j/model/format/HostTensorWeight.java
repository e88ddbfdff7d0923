package io.qlora4j.model.format;

import io.qlora4j.quant.HostTensor;

/**
 * A stored weight that is one {@link HostTensor}: its shape, size and host dequantization are the tensor's, so a
 * format's own weight class says only how it writes and uploads the tensor.
 */
interface HostTensorWeight extends StoredWeight {

    /** The quantized tensor this weight is. */
    HostTensor tensor();

    @Override
    default long[] shape() {
        return tensor().shape().clone();
    }

    @Override
    default long bytes() {
        return tensor().bytes();
    }

    @Override
    default float[] dequantize() {
        return tensor().dequantize();
    }
}
