package io.qlora4j.model.format;

import io.qlora4j.model.ModelException;
import io.qlora4j.quant.FloatSource;
import java.util.Locale;

/**
 * A format qlora4j reads from pre-quantized checkpoints but does not produce (GPTQ, AWQ): it is off the menu of
 * formats a job quantizes to, and {@link #quantize} refuses naming it.
 */
interface ReadOnlyFormat extends BaseFormat {

    /** False: see {@link #quantize}. */
    @Override
    default boolean quantizesOnTheFly() {
        return false;
    }

    /** Refused: such checkpoints are read as they are; qlora4j has no quantizer for the format. */
    @Override
    default StoredWeight quantize(FloatSource<ModelException> source, long[] shape) throws ModelException {
        String name = method().toUpperCase(Locale.ROOT);
        throw new ModelException(name + " is read from pre-quantized checkpoints only: qlora4j has no " + name
                + " quantizer (quantize with quantization_method bnb, aqlm or another implemented method)");
    }
}
