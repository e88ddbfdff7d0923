package io.qlora4j.model.format;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.int8.LlmInt8Quantizer;
import io.qlora4j.quant.int8.LlmInt8Tensor;
import io.qlora4j.quant.int8.NdLlmInt8Tensor;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * bitsandbytes 8-bit, LLM.int8 ({@code quantization_method: bnb}, {@code quantization_bit: 8}): per-output-row int8
 * codes over the float16 weight with the row absmax {@code SCB}, quantized byte for byte as bitsandbytes does
 * ({@link LlmInt8Quantizer}); the state dict of {@code Linear8bitLt} ({@code weight} I8 {@code [out, in]},
 * {@code SCB} F32 {@code [out]}, {@code weight_format} U8 scalar 0 for "row", the bias as a plain tensor).
 *
 * <p>Compute follows bitsandbytes' CPU training path since 0.47 ({@code MatMul8bitFp}): the weight is dequantized
 * ({@code CB * SCB / 127}, in float32, rounded once to the compute dtype) and multiplied in the compute dtype, for
 * the forward pass and the input gradient alike. {@code llm_int8_threshold} is the activation magnitude from which
 * bitsandbytes' CUDA and inference path ({@code MatMul8bitLt}) runs an input column in 16 bits instead of int8; it
 * never changes the stored weights, and since qlora4j always multiplies the dequantized weight it changes no
 * result here either: it is recorded in config.json so transformers loads the checkpoint with the same setting.
 *
 * @param threshold {@code llm_int8_threshold} (default 6.0)
 */
public record Bnb8bitFormat(double threshold) implements BaseFormat {
    static final FormatOption THRESHOLD = FormatOption.of("llm_int8_threshold", 6.0,
            "LLM.int8 outlier threshold, recorded in quantization_config (qlora4j multiplies the dequantized weight)");

    /** The registration: {@code bnb}/{@code bitsandbytes} at 8 bits, and {@code load_in_8bit} checkpoints. */
    public static final FormatRegistration REGISTRATION = new FormatRegistration("bitsandbytes 8-bit (LLM.int8)",
            List.of("bnb", "bitsandbytes"), List.of(8), List.of(THRESHOLD),
            keys -> new Bnb8bitFormat(keys.number(THRESHOLD)), Bnb8bitFormat::fromConfig);

    /** transformers' default: threshold 6.0. */
    public static final Bnb8bitFormat DEFAULT = new Bnb8bitFormat(6.0);

    /** Checks the threshold is a non-negative number. */
    public Bnb8bitFormat {
        if (!(threshold >= 0) || Double.isInfinite(threshold)) {
            throw new IllegalArgumentException(THRESHOLD.name() + " must be a number >= 0, got " + threshold);
        }
    }

    /** The format of a {@code load_in_8bit} config. */
    private static Bnb8bitFormat fromConfig(JsonNode config) {
        if (!BnbQuantizationConfig.isBnb(config, false)) {
            return null;
        }
        return new Bnb8bitFormat(config.path(THRESHOLD.name()).asDouble(6.0));
    }

    @Override
    public String method() {
        return "bnb";
    }

    @Override
    public int bits() {
        return 8;
    }

    /** {@code bitsandbytes LLM.int8, threshold 6.0}. */
    @Override
    public String describe() {
        return "bitsandbytes LLM.int8, threshold " + threshold;
    }

    @Override
    public Map<String, Object> keys() {
        Map<String, Object> keys = new LinkedHashMap<>();
        keys.put(FormatKeys.METHOD, method());
        keys.put(FormatKeys.BITS, bits());
        keys.put(THRESHOLD.name(), threshold);
        return keys;
    }

    /** Whether the module has its {@code SCB} entry. */
    @Override
    public boolean isStored(SafetensorsReader reader, String prefix) {
        return reader.contains(prefix + ".SCB");
    }

    @Override
    public List<String> storedKeys(SafetensorsReader reader, String prefix) {
        List<String> keys = new ArrayList<>(List.of(prefix + ".weight", prefix + ".SCB"));
        if (reader.contains(prefix + ".weight_format")) {
            keys.add(prefix + ".weight_format");
        }
        return keys;
    }

    /**
     * The stored codes and row absmax; {@code weight} must be I8 {@code [out, in]}, {@code SCB} F32 {@code [out]},
     * and {@code weight_format} (when present) 0, the row layout transformers saves (the GPU tile layouts are
     * refused, as bitsandbytes refuses them).
     */
    @Override
    public StoredWeight read(SafetensorsReader reader, String prefix) throws ModelException {
        TensorInfo weight = require(reader, prefix + ".weight", DType.I8, "int8 codes [out, in]");
        long[] shape = weight.shape();
        if (shape.length != 2) {
            throw new ModelException(weight.file() + ": tensor " + weight.name() + " has shape "
                    + Arrays.toString(shape) + ", expected [out, in] int8 codes");
        }
        TensorInfo scb = require(reader, prefix + ".SCB", DType.F32, "float32 row absmax [out]");
        if (!Arrays.equals(scb.shape(), new long[] {shape[0]})) {
            throw new ModelException(scb.file() + ": tensor " + scb.name() + " has shape " + Arrays.toString(scb.shape())
                    + ", expected [" + shape[0] + "] (one absmax per output row of weight " + Arrays.toString(shape) + ")");
        }
        String formatKey = prefix + ".weight_format";
        if (reader.contains(formatKey)) {
            byte[] format = reader.u8(formatKey);
            if (format.length != 1 || format[0] != 0) {
                throw new ModelException(reader.info(formatKey).file() + ": tensor " + formatKey + " is "
                        + Arrays.toString(format) + ", expected 0 (row); the GPU tile layouts col32, col_turing and"
                        + " col_ampere are not supported");
            }
        }
        return new Weight(new LlmInt8Tensor(reader.u8(weight.name()), reader.floats(scb.name()), shape));
    }

    private static TensorInfo require(SafetensorsReader reader, String name, DType dtype, String what)
            throws ModelException {
        TensorInfo t = reader.info(name);
        if (t.dtype() != dtype) {
            throw new ModelException(t.file() + ": tensor " + name + " is " + t.dtype() + ", expected " + dtype + " ("
                    + what + " of an LLM.int8 weight)");
        }
        return t;
    }

    /** Whole rows at a time, on every core, straight from {@code source}. */
    @Override
    public StoredWeight quantize(FloatSource<ModelException> source, long[] shape) throws ModelException {
        try {
            return new Weight(LlmInt8Quantizer.quantize(source, shape));
        } catch (IllegalArgumentException e) {
            throw new ModelException("LLM.int8: " + e.getMessage(), e);
        }
    }

    /** transformers' {@code BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=threshold)}. */
    @Override
    public ObjectNode quantizationConfig(String torchDtype) {
        return BnbQuantizationConfig.of(false, "float32", "fp4", false, threshold);
    }

    /** One byte per code plus a float32 {@code SCB} per row. */
    @Override
    public long storedBytes(long[] shape) {
        return shape[0] * shape[1] + 4 * shape[0];
    }

    @Override
    public String toString() {
        return describe();
    }

    /** One LLM.int8 weight. */
    private record Weight(LlmInt8Tensor tensor) implements HostTensorWeight {
        /** {@code weight} (I8), {@code SCB} (F32) and {@code weight_format} (U8 scalar 0), as Linear8bitLt saves them. */
        @Override
        public void write(SafetensorsWriter writer, String prefix, String torchDtype) throws ModelException {
            writer.addBytes(prefix + ".weight", DType.I8, tensor.shape(), tensor.codes());
            ByteBuffer scb = ByteBuffer.allocate(4 * tensor.scb().length).order(ByteOrder.LITTLE_ENDIAN);
            scb.asFloatBuffer().put(tensor.scb());
            writer.addBytes(prefix + ".SCB", DType.F32, new long[] {tensor.scb().length}, scb.array());
            writer.addBytes(prefix + ".weight_format", DType.U8, new long[0], new byte[] {0});
        }

        @Override
        public BaseLinear upload(NDArray bias, NDManager manager) {
            return new QuantizedLinear(NdLlmInt8Tensor.upload(tensor, manager), bias);
        }
    }
}
