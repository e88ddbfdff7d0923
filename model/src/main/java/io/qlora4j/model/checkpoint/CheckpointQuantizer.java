package io.qlora4j.model.checkpoint;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.StoredWeight;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.Objects;
import java.util.regex.Pattern;

/**
 * Writes the quantized checkpoint of a Hugging Face model directory in a base format, as transformers saves a model
 * loaded with that format's {@code quantization_config}: every linear weight under {@code model.layers.*} becomes
 * the format's state-dict entries, everything else is copied byte for byte, and config.json gains the format's
 * {@code quantization_config}. Streams one tensor at a time, so memory stays near the largest tensor whatever the
 * model's size.
 */
public final class CheckpointQuantizer {
    private static final Pattern LINEAR_WEIGHT = Pattern.compile("model\\.layers\\.\\d+\\..+\\.weight");

    private final BaseFormat format;
    private final long maxShardBytes;

    private CheckpointQuantizer(Builder b) {
        this.format = b.format;
        this.maxShardBytes = b.maxShardBytes;
    }

    /** A builder writing {@code format} (any quantized format) in 5 GB shards. */
    public static Builder builder(BaseFormat format) {
        return new Builder(format);
    }

    /** What a quantization run did, for the command's summary line. */
    public record Report(int tensors, int quantizedTensors, long quantizedParameters, long bytesBefore,
            long bytesAfter, double quantizedBits) {
        /** Average bits per quantized parameter, scales included. */
        public double bitsPerParameter() {
            return quantizedParameters == 0 ? 0 : quantizedBits / quantizedParameters;
        }
    }

    /** Whether a tensor of that name and rank is a linear weight this job quantizes. */
    public static boolean isQuantizedLinear(String name, int rank) {
        return rank == 2 && LINEAR_WEIGHT.matcher(name).matches();
    }

    /**
     * Quantizes {@code source} (a Hugging Face model directory) into {@code target}, which must not
     * exist or be empty; on any failure nothing is left at {@code target}.
     */
    public Report quantize(Path source, Path target) throws ModelException {
        ObjectNode config = ModelFiles.readConfig(source);
        if (config.has("quantization_config")) {
            throw new ModelException(source.resolve("config.json")
                    + ": the model is already quantized (quantization_config present)");
        }
        try (SafetensorsReader reader = SafetensorsReader.open(source);
                OutputDirectory out = OutputDirectory.create(target)) {
            Report report;
            try (SafetensorsWriter writer = SafetensorsWriter.builder(out.path()).optMaxShardBytes(maxShardBytes).build()) {
                report = copyTensors(reader, writer);
            }
            config.set("quantization_config",
                    format.quantizationConfig(config.path("torch_dtype").asText(config.path("dtype").asText("float32"))));
            ModelFiles.writeConfig(out.path(), config);
            ModelFiles.copyCompanionFiles(source, out.path());
            out.commit();
            return report;
        } catch (IOException e) {
            throw new ModelException(target + ": cannot write the quantized model: " + e.getMessage(), e);
        }
    }

    private Report copyTensors(SafetensorsReader reader, SafetensorsWriter writer) throws ModelException {
        int quantized = 0;
        long params = 0;
        long before = 0;
        double bits = 0;
        List<TensorInfo> tensors = reader.tensors();
        for (TensorInfo info : tensors) {
            before += info.byteSize();
            if (!isQuantizedLinear(info.name(), info.shape().length)) {
                writer.addFrom(reader, info.name());
                continue;
            }
            String torchDtype = torchDtype(info);
            // quantized straight from the file: no float[] of the whole weight where the format reads in chunks
            StoredWeight w = format.quantize(reader.floatSource(info.name()), info.shape());
            w.write(writer, info.name().substring(0, info.name().length() - ".weight".length()), torchDtype);
            quantized++;
            params += info.numel();
            bits += 8.0 * w.bytes();
        }
        return new Report(tensors.size(), quantized, params, before, writer.totalBytes(), bits);
    }

    private static String torchDtype(TensorInfo info) throws ModelException {
        return switch (info.dtype()) {
            case BF16 -> "bfloat16";
            case F16 -> "float16";
            case F32 -> "float32";
            default -> throw new ModelException(info.file() + ": tensor " + info.name() + ": a linear weight of dtype "
                    + info.dtype() + " cannot be quantized (expected F32, F16 or BF16)");
        };
    }

    /** Settings of a {@link CheckpointQuantizer}. */
    public static final class Builder {
        private final BaseFormat format;
        private long maxShardBytes = 5_000_000_000L;

        private Builder(BaseFormat format) {
            if (Objects.requireNonNull(format, "format") == BaseFormats.DENSE) {
                throw new IllegalArgumentException("quantizing needs a quantized format, not " + format.describe());
            }
            this.format = format;
        }

        /** Largest output shard in bytes (default 5 GB, LLaMA-Factory's export_size). */
        public Builder optMaxShardBytes(long value) {
            this.maxShardBytes = value;
            return this;
        }

        /** The quantizer. */
        public CheckpointQuantizer build() {
            return new CheckpointQuantizer(this);
        }
    }
}
