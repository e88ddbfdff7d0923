package io.qlora4j.model.format;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.quant.BnbStateDict;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.QuantFormatException;
import io.qlora4j.quant.Shapes;
import io.qlora4j.quant.hqq.HqqPacking;
import io.qlora4j.quant.hqq.HqqParams;
import io.qlora4j.quant.hqq.HqqQuantizer;
import io.qlora4j.quant.hqq.HqqStateDict;
import io.qlora4j.quant.hqq.HqqTensor;
import io.qlora4j.quant.hqq.NdHqqTensor;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * HQQ ({@code quantization_method: hqq}, {@code quantization_bit} 1, 2, 3, 4, 5, 6 or 8), as LLaMA-Factory builds it
 * with {@code HqqConfig(nbits=b, axis=0)}: groups of 64 (or {@code hqq_group_size}) along axis 0, the zero points
 * refined by HQQ's proximal solver on its CPU float32 path, the zero rounded at 4 bits only, lm_head left alone
 * ({@link HqqQuantizer}); stored as transformers saves an {@code HQQLinear} ({@link HqqStateDict}: {@code W_q},
 * {@code scale}, {@code zero} and the meta entries, with float32 scales and zeros) and dequantized on the device in
 * the compute dtype ({@link NdHqqTensor}). Pre-quantized checkpoints of any group size and axis load.
 *
 * @param params the code width, group size, axis, solver and zero rounding
 */
public record HqqFormat(HqqParams params) implements BaseFormat {
    static final FormatOption GROUP_SIZE = FormatOption.of("hqq_group_size", HqqParams.DEFAULT_GROUP_SIZE,
            "HQQ: elements per group along axis 0 (a multiple of 8)");

    /** The registration: {@code hqq} at 1-6 and 8 bits, and {@code quant_method: hqq} checkpoints. */
    public static final FormatRegistration REGISTRATION = new FormatRegistration("HQQ", List.of("hqq"),
            HqqParams.BITS, List.of(GROUP_SIZE), HqqFormat::fromKeys, HqqFormat::fromConfig);

    private static HqqFormat fromKeys(FormatKeys keys) {
        int group = keys.integer(GROUP_SIZE);
        if (group <= 0 || group % 8 != 0) {
            throw new IllegalArgumentException(GROUP_SIZE.name() + " " + group + " is not a positive multiple of 8");
        }
        return new HqqFormat(HqqParams.llamaFactory(keys.bits()).withGroupSize(group));
    }

    private static HqqFormat fromConfig(JsonNode config) {
        HqqParams p = HqqStateDict.fromQuantizationConfig(config);
        return p == null ? null : new HqqFormat(p);
    }

    @Override
    public String method() {
        return "hqq";
    }

    @Override
    public int bits() {
        return params.nbits();
    }

    /** {@code HQQ 4-bit, group 64 along axis 0}. */
    @Override
    public String describe() {
        return "HQQ " + params.nbits() + "-bit, group " + params.groupSize() + " along axis " + params.axis();
    }

    @Override
    public Map<String, Object> keys() {
        Map<String, Object> keys = new LinkedHashMap<>();
        keys.put(FormatKeys.METHOD, method());
        keys.put(FormatKeys.BITS, bits());
        keys.put(GROUP_SIZE.name(), params.groupSize());
        return keys;
    }

    /** Whether {@code prefix.W_q} exists. */
    @Override
    public boolean isStored(SafetensorsReader reader, String prefix) {
        return reader.contains(prefix + "." + HqqStateDict.CODES);
    }

    @Override
    public List<String> storedKeys(SafetensorsReader reader, String prefix) {
        return HqqStateDict.keys(prefix).stream().filter(reader::contains).toList();
    }

    /** The stored codes, scales and zeros; bits, group size and axis as the module's meta entries record them. */
    @Override
    public StoredWeight read(SafetensorsReader reader, String prefix) throws ModelException {
        Map<String, BnbStateDict.Entry> entries = StateEntries.read(reader, HqqStateDict.keys(prefix));
        try {
            return new Weight(HqqStateDict.read(prefix, entries::get));
        } catch (QuantFormatException e) {
            throw new ModelException(reader.info(prefix + "." + HqqStateDict.CODES).file() + ": " + e.getMessage(), e);
        }
    }

    /** The whole weight read once (the solver revisits every element), then quantized on every core. */
    @Override
    public StoredWeight quantize(FloatSource<ModelException> source, long[] shape) throws ModelException {
        String problem = groupingProblem(shape);
        if (problem != null) {
            throw new ModelException("HQQ weight " + problem);
        }
        HqqQuantizer quantizer = HqqQuantizer.builder(params.nbits()).optGroupSize(params.groupSize())
                .optAxis(params.axis()).optOptimize(params.optimize()).optRoundZero(params.roundZero()).build();
        return new Weight(quantizer.quantize(source, shape));
    }

    /** Quantizes as {@link #quantize}, naming the tensor when its shape does not split into groups. */
    @Override
    public BaseLinear load(SafetensorsReader reader, String prefix, NDArray bias, NDManager manager)
            throws ModelException {
        String weight = prefix + ".weight";
        String problem = groupingProblem(reader.info(weight).shape());
        if (problem != null) {
            throw new ModelException(reader.info(weight).file() + ": tensor " + weight + ": " + problem);
        }
        return BaseFormat.super.load(reader, prefix, bias, manager);
    }

    /** Why a weight of {@code shape} cannot be grouped, or null when it can. */
    private String groupingProblem(long[] shape) {
        long n = Shapes.numel(shape);
        long groups = n / params.groupSize();
        long rows = params.axis() == 0 ? params.groupSize() : groups;
        if (n == 0 || n % params.groupSize() != 0) {
            return "of shape " + Arrays.toString(shape) + " (" + n + " elements) does not split into groups of "
                    + params.groupSize() + " (" + GROUP_SIZE.name() + ")";
        }
        if (params.packing() != HqqPacking.THREE_BIT && rows % params.packing().codesPerWord() != 0) {
            return "of shape " + Arrays.toString(shape) + " gives " + rows + " grouped rows, which HQQ's "
                    + params.packing().id() + " cannot pack (a multiple of " + params.packing().codesPerWord()
                    + " expected)";
        }
        return null;
    }

    @Override
    public ObjectNode quantizationConfig(String torchDtype) {
        return HqqStateDict.quantizationConfig(params);
    }

    /** Packed codes (a byte each at 5, 6 and 8 bits) plus a float32 scale and zero per group. */
    @Override
    public long storedBytes(long[] shape) {
        long n = Shapes.numel(shape);
        long groups = (n + params.groupSize() - 1) / params.groupSize();
        long rows = params.axis() == 0 ? params.groupSize() : groups;
        return params.packing().packedBytes(rows, (n + rows - 1) / rows) + 8 * groups;
    }

    /**
     * On the device ({@code NdHqqTensor}): the stored form, plus for packed codes the float32 table that unpacks every
     * byte of a word ({@code 256 x word bytes x codes per word}) and, for int32 words, the byte offsets into it.
     */
    @Override
    public long deviceBytes(long[] shape) {
        HqqPacking packing = params.packing();
        if (packing == HqqPacking.BYTE) {
            return storedBytes(shape);
        }
        long wordBytes = packing.int32Words() ? Integer.BYTES : 1;
        return storedBytes(shape) + 256L * wordBytes * packing.codesPerWord() * Float.BYTES
                + (wordBytes > 1 ? wordBytes * Integer.BYTES : 0);
    }

    @Override
    public String toString() {
        return describe();
    }

    /** One HQQ tensor. */
    private record Weight(HqqTensor tensor) implements HostTensorWeight {
        /** {@code W_q}, {@code scale}, {@code zero} and the meta entries under {@code prefix}. */
        @Override
        public void write(SafetensorsWriter writer, String prefix, String torchDtype) throws ModelException {
            StateEntries.write(writer, HqqStateDict.entries(prefix, tensor));
        }

        @Override
        public BaseLinear upload(NDArray bias, NDManager manager) {
            return new QuantizedLinear(NdHqqTensor.upload(tensor, manager), bias);
        }
    }
}
