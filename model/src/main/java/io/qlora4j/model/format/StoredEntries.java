package io.qlora4j.model.format;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.TensorInfo;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The checks every pre-quantized format makes on the entries it reads, each failing with one line that names the
 * file, the tensor and what was expected.
 */
final class StoredEntries {
    private StoredEntries() {}

    /** The entry {@code name}, which {@code format} stores for every quantized linear. */
    static TensorInfo require(SafetensorsReader reader, String name, String format) throws ModelException {
        if (!reader.contains(name)) {
            throw new ModelException("missing tensor " + name + " (" + format + " stores it for every quantized linear)");
        }
        return reader.info(name);
    }

    /** Checks the entry's dtype is one of {@code allowed}. */
    static TensorInfo dtype(TensorInfo info, DType... allowed) throws ModelException {
        if (!List.of(allowed).contains(info.dtype())) {
            throw new ModelException(info.file() + ": tensor " + info.name() + " has dtype " + info.dtype()
                    + ", expected " + (allowed.length == 1 ? allowed[0] : "one of " + Arrays.toString(allowed)));
        }
        return info;
    }

    /** Checks the entry's shape is {@code expected}, which {@code because} explains. */
    static void shape(TensorInfo info, long[] expected, String because) throws ModelException {
        if (!Arrays.equals(info.shape(), expected)) {
            throw new ModelException(info.file() + ": tensor " + info.name() + " has shape "
                    + Arrays.toString(info.shape()) + ", expected " + Arrays.toString(expected) + " for " + because);
        }
    }

    /** Checks the entry has {@code rank} dimensions. */
    static void rank(TensorInfo info, int rank, String layout) throws ModelException {
        if (info.shape().length != rank) {
            throw new ModelException(info.file() + ": tensor " + info.name() + " has shape "
                    + Arrays.toString(info.shape()) + ", expected " + layout);
        }
    }

    /**
     * GPTQ's and AWQ's three entries under {@code prefix}: int32 {@code qweight} and {@code qzeros}, float
     * {@code scales}, each required.
     */
    static TensorInfo[] packedInts(SafetensorsReader reader, String prefix, String format) throws ModelException {
        return new TensorInfo[] {dtype(require(reader, prefix + ".qweight", format), DType.I32),
            dtype(require(reader, prefix + ".qzeros", format), DType.I32),
            dtype(require(reader, prefix + ".scales", format), DType.F16, DType.BF16, DType.F32)};
    }

    /** The job keys of a format chosen by its method and bit width alone. */
    static Map<String, Object> methodAndBits(String method, int bits) {
        Map<String, Object> keys = new LinkedHashMap<>();
        keys.put(FormatKeys.METHOD, method);
        keys.put(FormatKeys.BITS, bits);
        return keys;
    }

    /** The entries of {@code keys} under {@code prefix} that {@code reader} holds. */
    static List<String> present(SafetensorsReader reader, String prefix, String... keys) {
        return Arrays.stream(keys).map(k -> prefix + "." + k).filter(reader::contains).toList();
    }
}
