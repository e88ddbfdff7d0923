package io.qlora4j.adapters;

import com.fasterxml.jackson.core.JacksonException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.FormatKeys;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;

/**
 * {@code qlora4j.json} in an adapter directory: the base format the adapter was trained over, as the job keys that
 * choose it ({@code {"base_format": {"quantization_method": "bnb", "quantization_bit": 4, ...}}}, empty for a dense
 * base) and a description. PEFT has no field for it and warns about keys it does not know in
 * {@code adapter_config.json}, so qlora4j keeps it in a file of its own (and says it in the adapter's README.md);
 * a merged export reads it back to merge into exactly the weights the adapter was trained against.
 */
final class BaseFormatRecord {
    /** The file name inside an adapter directory. */
    static final String FILE = "qlora4j.json";
    private static final String KEY = "base_format";

    private BaseFormatRecord() {}

    /** The file's bytes for {@code format}: sorted keys, indent 2, as the adapter config. */
    static byte[] json(BaseFormat format) {
        Map<String, Object> record = new TreeMap<>();
        record.put(KEY, new TreeMap<>(format.keys()));
        record.put(KEY + "_description", format.describe());
        return AdapterConfig.toJson(record);
    }

    /**
     * The base format recorded in {@code adapterDir}, or null when the directory has no {@value #FILE} (an adapter
     * from PEFT or another tool).
     *
     * @throws ModelException naming the file when it is not a record qlora4j can read
     */
    static BaseFormat read(Path adapterDir) throws ModelException {
        Path file = adapterDir.resolve(FILE);
        if (!Files.isRegularFile(file)) {
            return null;
        }
        JsonNode keys;
        try {
            keys = new ObjectMapper().readTree(file.toFile()).path(KEY);
        } catch (JacksonException e) {
            throw new ModelException(file + ": not valid JSON: " + e.getOriginalMessage(), e);
        } catch (IOException e) {
            throw new ModelException(file + ": cannot read: " + e.getMessage(), e);
        }
        if (!keys.isObject()) {
            throw new ModelException(file + ": " + KEY + " must be an object of quantization keys, got " + keys);
        }
        try {
            Map<String, Object> values = new ObjectMapper().convertValue(keys, Map.class);
            return BaseFormats.fromKeys(FormatKeys.of(values));
        } catch (IllegalArgumentException | ModelException e) {
            throw new ModelException(file + ": " + KEY + ": " + e.getMessage(), e);
        }
    }
}
