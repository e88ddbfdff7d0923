package io.qlora4j.adapters;

import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.QuantType;
import java.util.Locale;
import java.util.Objects;

/**
 * The 4-bit format of a base model's linear weights: what an adapter was trained against (recorded under
 * {@code qlora4j} in its {@code adapter_config.json}) and what a merged export may be re-quantized to.
 *
 * @param type NF4 or FP4
 * @param blocksize elements per block
 * @param doubleQuant whether the block scales are quantized to 8 bits
 */
public record QuantizedBase(QuantType type, int blocksize, boolean doubleQuant) {
    /** QLoRA's format: NF4, blocksize 64, double quantization (LLaMA-Factory's defaults too). */
    public static final QuantizedBase QLORA = new QuantizedBase(QuantType.NF4, 64, true);

    /** Checks the type is set; an unsupported blocksize fails when a quantizer is built. */
    public QuantizedBase {
        Objects.requireNonNull(type, "type");
    }

    /** A quantizer producing exactly this format. */
    public BlockwiseQuantizer quantizer() {
        return BlockwiseQuantizer.builder().optType(type).optBlocksize(blocksize).optDoubleQuant(doubleQuant).build();
    }

    /** {@code NF4+DQ, blocksize 64}. */
    @Override
    public String toString() {
        return type.jsonName().toUpperCase(Locale.ROOT) + (doubleQuant ? "+DQ" : "") + ", blocksize " + blocksize;
    }
}
