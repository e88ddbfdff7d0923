package io.qlora4j.model.format;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.BnbStateDict;
import java.nio.ByteBuffer;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The raw state-dict entries of a stored linear: read out of a checkpoint for a format's parser in {@code quant}, and
 * written from the entries such a parser makes.
 */
final class StateEntries {
    private StateEntries() {}

    /** Each of {@code keys} that {@code reader} holds, with its dtype name, shape and bytes; absent keys are left out. */
    static Map<String, BnbStateDict.Entry> read(SafetensorsReader reader, List<String> keys) throws ModelException {
        Map<String, BnbStateDict.Entry> entries = new HashMap<>();
        for (String key : keys) {
            if (reader.contains(key)) {
                TensorInfo info = reader.info(key);
                ByteBuffer bytes = reader.bytes(key);
                byte[] data = new byte[bytes.remaining()];
                bytes.get(data);
                entries.put(key, new BnbStateDict.Entry(key, info.dtype().name(), info.shape(), data));
            }
        }
        return entries;
    }

    /** Adds each of {@code entries} to {@code writer} as it is. */
    static void write(SafetensorsWriter writer, List<BnbStateDict.Entry> entries) throws ModelException {
        for (BnbStateDict.Entry e : entries) {
            writer.addBytes(e.key(), DType.fromName(e.dtype()), e.shape(), e.data());
        }
    }
}
