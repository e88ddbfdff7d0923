package io.qlora4j.bench;

import io.qlora4j.model.decoder.DecoderConfig;

/**
 * A model shape run at {@code batch} x {@code seq}.
 *
 * @param name how tables name it
 * @param config the model
 * @param batch rows per step
 * @param seq tokens per row
 */
record Workload(String name, DecoderConfig config, int batch, int seq) {
    /** The FLOP counts at this shape. */
    ModelFlops flops() {
        return ModelFlops.of(config, batch, seq);
    }
}
