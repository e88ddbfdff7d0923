package io.qlora4j.model.checkpoint;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.BnbStateDict;
import io.qlora4j.quant.QuantFormatException;
import io.qlora4j.quant.QuantType;
import io.qlora4j.quant.QuantizedTensor;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.Map;

/** Reads a bitsandbytes 4-bit weight (packed codes and quant state) out of a safetensors checkpoint. */
public final class BnbEntries {
    private BnbEntries() {}

    /** The 4-bit type a weight is stored in, or null when the checkpoint holds it as a plain tensor. */
    public static QuantType detect(SafetensorsReader reader, String weightKey) {
        return BnbStateDict.detect(weightKey, reader::contains);
    }

    /**
     * The quantized tensor stored under {@code weightKey}.
     *
     * @throws ModelException naming the file and key when an entry is missing or inconsistent
     */
    public static QuantizedTensor read(SafetensorsReader reader, String weightKey, QuantType type) throws ModelException {
        Map<String, BnbStateDict.Entry> entries = new HashMap<>();
        for (String key : BnbStateDict.keys(weightKey, type)) {
            if (reader.contains(key)) {
                TensorInfo info = reader.info(key);
                ByteBuffer bytes = reader.bytes(key);
                byte[] data = new byte[bytes.remaining()];
                bytes.get(data);
                entries.put(key, new BnbStateDict.Entry(key, info.dtype().name(), info.shape(), data));
            }
        }
        try {
            return BnbStateDict.read(weightKey, type, entries::get);
        } catch (QuantFormatException e) {
            throw new ModelException(reader.info(weightKey).file() + ": " + e.getMessage(), e);
        }
    }
}
