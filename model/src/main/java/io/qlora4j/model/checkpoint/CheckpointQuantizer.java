package io.qlora4j.model.checkpoint;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.BnbStateDict;
import io.qlora4j.quant.QuantType;
import io.qlora4j.quant.QuantizedTensor;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Pattern;

/**
 * Writes the bitsandbytes 4-bit checkpoint of a Hugging Face model directory, as transformers
 * saves a model loaded with {@code load_in_4bit}: every linear weight under {@code model.layers.*}
 * becomes packed codes plus its quant state, everything else is copied byte for byte. Streams one
 * tensor at a time, so memory stays near the largest tensor whatever the model's size.
 */
public final class CheckpointQuantizer {
    private static final Pattern LINEAR_WEIGHT = Pattern.compile("model\\.layers\\.\\d+\\..+\\.weight");

    private final BlockwiseQuantizer quantizer;
    private final QuantType type;
    private final boolean doubleQuant;
    private final long maxShardBytes;

    private CheckpointQuantizer(Builder b) {
        this.type = b.type;
        this.doubleQuant = b.doubleQuant;
        this.maxShardBytes = b.maxShardBytes;
        this.quantizer = BlockwiseQuantizer.builder().optType(b.type).optBlocksize(b.blocksize)
                .optDoubleQuant(b.doubleQuant).build();
    }

    /** A builder; defaults are QLoRA's: NF4, blocksize 64, double quantization, 5 GB shards. */
    public static Builder builder() {
        return new Builder();
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
                    quantizationConfig(config.path("torch_dtype").asText(config.path("dtype").asText("float32"))));
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
            // quantized straight from the file a chunk at a time: no float[] of the whole weight
            QuantizedTensor q = quantizer.quantize(reader.floatSource(info.name()), info.shape());
            add(writer, info.name(), q, torchDtype);
            quantized++;
            params += q.numel();
            bits += q.bitsPerParameter() * q.numel();
        }
        return new Report(tensors.size(), quantized, params, before, writer.totalBytes(), bits);
    }

    /**
     * Quantizes one linear weight ({@code values} row-major in {@code shape}) and adds its bitsandbytes entries
     * to {@code writer}, recording {@code torchDtype} ({@code bfloat16}, {@code float16}, {@code float32}) as the
     * dtype it had; the way a job that computes its weights (a merge) writes them in this checkpoint's format.
     */
    public QuantizedTensor addQuantized(SafetensorsWriter writer, String weightKey, float[] values, long[] shape,
            String torchDtype) throws ModelException {
        QuantizedTensor q = quantizer.quantize(values, shape);
        add(writer, weightKey, q, torchDtype);
        return q;
    }

    /** Adds the bitsandbytes entries of a quantized weight to {@code writer}. */
    private static void add(SafetensorsWriter writer, String weightKey, QuantizedTensor q, String torchDtype)
            throws ModelException {
        for (BnbStateDict.Entry e : BnbStateDict.entries(weightKey, q, torchDtype)) {
            writer.addBytes(e.key(), DType.fromName(e.dtype()), e.shape(), e.data());
        }
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

    /**
     * The {@code quantization_config} that transformers reads to load this quantizer's checkpoints, computing in
     * {@code computeDtype} ({@code bfloat16}, {@code float16} or {@code float32}).
     */
    public ObjectNode quantizationConfig(String computeDtype) {
        ObjectNode q = new ObjectMapper().createObjectNode();
        q.put("_load_in_4bit", true);
        q.put("_load_in_8bit", false);
        q.put("bnb_4bit_compute_dtype", computeDtype);
        q.put("bnb_4bit_quant_storage", "uint8");
        q.put("bnb_4bit_quant_type", type.jsonName());
        q.put("bnb_4bit_use_double_quant", doubleQuant);
        q.put("llm_int8_enable_fp32_cpu_offload", false);
        q.put("llm_int8_has_fp16_weight", false);
        q.putNull("llm_int8_skip_modules");
        q.put("llm_int8_threshold", 6.0);
        q.put("load_in_4bit", true);
        q.put("load_in_8bit", false);
        q.put("quant_method", "bitsandbytes");
        return q;
    }

    /** Settings of a {@link CheckpointQuantizer}. */
    public static final class Builder {
        private QuantType type = QuantType.NF4;
        private int blocksize = 64;
        private boolean doubleQuant = true;
        private long maxShardBytes = 5_000_000_000L;

        private Builder() {}

        /** NF4 (default) or FP4. */
        public Builder optType(QuantType value) {
            this.type = value;
            return this;
        }

        /** Elements per block (default 64). */
        public Builder optBlocksize(int value) {
            this.blocksize = value;
            return this;
        }

        /** Quantize the block scales to 8 bits (default true). */
        public Builder optDoubleQuant(boolean value) {
            this.doubleQuant = value;
            return this;
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
