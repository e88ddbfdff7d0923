package io.qlora4j.adapters;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.FormatKeys;
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
    /** The seed of a randomised start (PiSSA's {@code svd_lowrank} sketch), so the base is rebuilt exactly. */
    private static final String SEED = "init_seed";

    private BaseFormatRecord() {}

    /**
     * The file's bytes for {@code format} and the seed of the adapter's start ({@code initSeed}, null when it
     * draws nothing from it): sorted keys, indent 2, as the adapter config.
     */
    static byte[] json(BaseFormat format, Long initSeed) {
        Map<String, Object> record = new TreeMap<>();
        record.put(KEY, new TreeMap<>(format.keys()));
        record.put(KEY + "_description", format.describe());
        if (initSeed != null) {
            record.put(SEED, initSeed);
        }
        return AdapterConfig.toJson(record);
    }

    /** The seed of the start recorded in {@code adapterDir}, or null when there is none (or no record). */
    static Long initSeed(Path adapterDir) throws ModelException {
        JsonNode seed = readTree(adapterDir).path(SEED);
        if (seed.isMissingNode() || seed.isNull()) {
            return null;
        }
        if (!seed.canConvertToLong()) {
            throw new ModelException(adapterDir.resolve(FILE) + ": " + SEED + " must be an integer, got " + seed);
        }
        return seed.asLong();
    }

    /**
     * The file's JSON object ({@link AdapterConfig#readObject}), or an empty object when the directory has no record.
     */
    private static JsonNode readTree(Path adapterDir) throws ModelException {
        Path file = adapterDir.resolve(FILE);
        if (!Files.isRegularFile(file)) {
            return new ObjectMapper().createObjectNode();
        }
        return AdapterConfig.readObject(file);
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
        JsonNode keys = readTree(adapterDir).path(KEY);
        if (!keys.isObject()) {
            throw new ModelException(file + ": " + KEY + " must be an object of quantization keys, got "
                    + (keys.isMissingNode() ? "nothing" : keys));
        }
        try {
            Map<String, Object> values = new ObjectMapper().convertValue(keys, Map.class);
            return BaseFormats.fromKeys(FormatKeys.of(values));
        } catch (IllegalArgumentException | ModelException e) {
            throw new ModelException(file + ": " + KEY + ": " + e.getMessage(), e);
        }
    }
}
