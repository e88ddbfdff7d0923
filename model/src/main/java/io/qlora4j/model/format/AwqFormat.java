package io.qlora4j.model.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.gptq.AwqTensor;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * AWQ GEMM checkpoints ({@code quant_method: awq, version: gemm}) as AutoAWQ writes them, read as they are:
 * {@code qweight [in, out/8]} int32 with 4-bit codes packed along the output axis in AutoAWQ's interleaved nibble
 * order, {@code qzeros [in/group, out/8]} in the same order (stored as they are), fp16 {@code scales [in/group,
 * out]}. Dequantized on the device to {@code fp16(scale * (q - zero))} as AutoAWQ's {@code dequantize_gemm} does,
 * multiplied in the compute dtype, gradient to the input only. Read only. Other versions (gemv, gemv_fast, marlin,
 * ...), other widths, {@code zero_point: false} and the {@code llm-awq} backend are refused by their field.
 *
 * @param groupSize input rows per group, -1 for all of them
 */
public record AwqFormat(int groupSize) implements ReadOnlyFormat {
    /** The registration: {@code quant_method: awq} checkpoints of version gemm, 4 bits. */
    public static final FormatRegistration REGISTRATION = new FormatRegistration("AWQ", List.of("awq"), List.of(4),
            List.of(), keys -> new AwqFormat(128), AwqFormat::fromConfig);

    private static AwqFormat fromConfig(JsonNode c) {
        if (!"awq".equals(c.path("quant_method").asText())) {
            return null;
        }
        String version = c.path("version").asText("gemm");
        if (!version.equalsIgnoreCase("gemm")) {
            throw new IllegalArgumentException("version " + version + " is not implemented (qlora4j reads AWQ gemm)");
        }
        int bits = c.has("bits") ? ConfigIntegers.get(c, "bits", 4) : ConfigIntegers.get(c, "w_bit", 4);
        if (bits != 4) {
            throw new IllegalArgumentException("bits " + bits + " is not implemented for awq (4 only)");
        }
        if (!c.path("zero_point").asBoolean(true)) {
            throw new IllegalArgumentException("zero_point false is not implemented (AWQ gemm stores zero points)");
        }
        String backend = c.path("backend").asText("autoawq");
        if (backend.equalsIgnoreCase("llm-awq")) {
            throw new IllegalArgumentException("backend llm-awq is not implemented (its layout differs; qlora4j reads"
                    + " AutoAWQ's)");
        }
        return new AwqFormat(c.has("group_size") ? ConfigIntegers.get(c, "group_size", 128)
                : ConfigIntegers.get(c, "q_group_size", 128));
    }

    @Override
    public String method() {
        return "awq";
    }

    @Override
    public int bits() {
        return 4;
    }

    @Override
    public String describe() {
        return String.format(Locale.ROOT, "AWQ 4-bit gemm, group %d", groupSize);
    }

    @Override
    public Map<String, Object> keys() {
        return StoredEntries.methodAndBits(method(), 4);
    }

    @Override
    public boolean isStored(SafetensorsReader reader, String prefix) {
        return reader.contains(prefix + ".qweight");
    }

    @Override
    public List<String> storedKeys(SafetensorsReader reader, String prefix) {
        return StoredEntries.present(reader, prefix, "qweight", "qzeros", "scales");
    }

    /** Reads qweight, qzeros and scales, checking their shapes against each other and the group size. */
    @Override
    public StoredWeight read(SafetensorsReader reader, String prefix) throws ModelException {
        TensorInfo[] entries = StoredEntries.packedInts(reader, prefix, "AWQ");
        TensorInfo qweight = entries[0];
        TensorInfo qzeros = entries[1];
        TensorInfo scales = entries[2];
        StoredEntries.rank(qweight, 2, "[in, out / 8]");
        long in = qweight.shape()[0];
        long out = qweight.shape()[1] * 8;
        long group = groupSize <= 0 ? in : groupSize;
        if (in % group != 0) {
            throw new ModelException(qweight.file() + ": tensor " + qweight.name() + " has " + in
                    + " input rows, not a multiple of group_size " + group);
        }
        String because = "4-bit codes of " + in + " x " + out + " in groups of " + group;
        StoredEntries.shape(qzeros, new long[] {in / group, out / 8}, because);
        StoredEntries.shape(scales, new long[] {in / group, out}, because);
        return GroupedIntWeight.of(AwqTensor.fromCheckpoint((int) in, (int) out, (int) group, reader.ints(qweight.name()),
                reader.ints(qzeros.name()), reader.floats(scales.name())), storedBytes(new long[] {out, in}));
    }

    @Override
    public ObjectNode quantizationConfig(String torchDtype) {
        ObjectNode q = new ObjectMapper().createObjectNode();
        q.put("bits", 4);
        q.put("group_size", groupSize);
        q.put("quant_method", "awq");
        q.put("version", "gemm");
        q.put("zero_point", true);
        return q;
    }

    /** Packed codes, packed zeros and fp16 scales. */
    @Override
    public long storedBytes(long[] shape) {
        long out = shape[0];
        long in = shape[1];
        long groups = groupSize <= 0 ? 1 : in / groupSize;
        return in * out / 2 + groups * out / 2 + groups * out * 2;
    }

    /** On the device: {@link GroupedIntWeight#deviceBytes}. */
    @Override
    public long deviceBytes(long[] shape) {
        return GroupedIntWeight.deviceBytes(shape[0], shape[1], groupSize <= 0 ? 1 : shape[1] / groupSize, 4);
    }

    @Override
    public String toString() {
        return describe();
    }
}
