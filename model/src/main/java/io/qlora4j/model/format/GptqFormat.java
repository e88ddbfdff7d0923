package io.qlora4j.model.format;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.QuantFormatException;
import io.qlora4j.quant.gptq.GptqTensor;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * GPTQ checkpoints ({@code quant_method: gptq}) as AutoGPTQ and GPTQModel write them, read as they are:
 * {@code qweight [in*bits/32, out]} int32 (2, 3, 4 or 8-bit codes packed along the input axis), {@code qzeros}
 * (packed along the output axis; {@code checkpoint_format: gptq} stores zero - 1, turned back by gptqmodel's word
 * add, {@code gptq_v2} the zero itself), fp16 {@code scales [groups, out]} and {@code g_idx [in]} (the group of
 * every input column, arbitrary with {@code desc_act}). Dequantized on the device as every GPTQ kernel does,
 * {@code fp16(scale * (q - zero))}, then multiplied in the compute dtype, gradient to the input only, which is the
 * LoRA-over-GPTQ flow of LLaMA-Factory. Read only: qlora4j has no GPTQ quantizer. Layouts qlora4j does not read
 * (marlin, bitblas, gptq_p, other pack dtypes, per-module dynamic overrides, a quantized {@code lm_head}) are
 * refused by the field that names them.
 *
 * @param bits code width
 * @param groupSize input columns per group, -1 for one group over all of them
 * @param descAct whether columns were quantized in activation order (the group index then comes from g_idx)
 * @param sym whether the zero-points are all {@code 2^(bits-1)}
 * @param v1 whether zeros are stored minus one ({@code checkpoint_format: gptq})
 */
public record GptqFormat(int bits, int groupSize, boolean descAct, boolean sym, boolean v1) implements ReadOnlyFormat {
    /** The registration: {@code quant_method: gptq} checkpoints, 2/3/4/8 bits. */
    public static final FormatRegistration REGISTRATION = new FormatRegistration("GPTQ", List.of("gptq"),
            List.of(2, 3, 4, 8), List.of(), keys -> new GptqFormat(keys.bits(), 128, false, true, true),
            GptqFormat::fromConfig);

    private static GptqFormat fromConfig(JsonNode c) {
        if (!"gptq".equals(c.path("quant_method").asText())) {
            return null;
        }
        if (!c.has("bits")) {
            throw new IllegalArgumentException("bits is missing (transformers' GPTQConfig requires it)");
        }
        int bits = ConfigIntegers.get(c, "bits", 0);
        if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
            throw new IllegalArgumentException("bits " + bits + " is not implemented for gptq (qlora4j reads 2, 3, 4 and 8)");
        }
        String format = c.hasNonNull("checkpoint_format") ? c.get("checkpoint_format").asText()
                : c.path("format").asText("gptq");
        if (!format.equals("gptq") && !format.equals("gptq_v2")) {
            throw new IllegalArgumentException("checkpoint_format " + format
                    + " is not implemented (qlora4j reads gptq and gptq_v2)");
        }
        if (c.path("is_marlin_format").asBoolean(false)) {
            throw new IllegalArgumentException("is_marlin_format true (the marlin layout) is not implemented");
        }
        String pack = c.path("meta").path("pack_dtype").asText("int32");
        if (!pack.equals("int32") && !pack.equals("torch.int32")) {
            throw new IllegalArgumentException("meta.pack_dtype " + pack + " is not implemented (int32 only)");
        }
        if (c.path("lm_head").asBoolean(false)) {
            // gptqmodel's quantized output layer: qlora4j reads lm_head.weight only
            throw new IllegalArgumentException("lm_head true (a quantized lm_head) is not implemented");
        }
        JsonNode dynamic = c.path("dynamic");
        if (!dynamic.isMissingNode() && !dynamic.isNull() && !dynamic.isEmpty()) {
            throw new IllegalArgumentException("dynamic (per-module overrides) is not implemented");
        }
        int groupSize = ConfigIntegers.get(c, "group_size", 128);
        if (groupSize == 0 || groupSize < -1) {
            throw new IllegalArgumentException("group_size " + groupSize + " is neither -1 (one group) nor a positive"
                    + " number of input columns");
        }
        return new GptqFormat(bits, groupSize, c.path("desc_act").asBoolean(false),
                c.path("sym").asBoolean(true), format.equals("gptq"));
    }

    @Override
    public String method() {
        return "gptq";
    }

    @Override
    public String describe() {
        return String.format(Locale.ROOT, "GPTQ %d-bit, group %d%s%s, %s", bits, groupSize, descAct ? ", act-order" : "",
                sym ? ", symmetric" : "", v1 ? "gptq" : "gptq_v2");
    }

    @Override
    public Map<String, Object> keys() {
        return StoredEntries.methodAndBits(method(), bits);
    }

    @Override
    public boolean isStored(SafetensorsReader reader, String prefix) {
        return reader.contains(prefix + ".qweight");
    }

    @Override
    public List<String> storedKeys(SafetensorsReader reader, String prefix) {
        return StoredEntries.present(reader, prefix, "qweight", "qzeros", "scales", "g_idx");
    }

    /**
     * Reads qweight, qzeros, scales and g_idx (when present), checking their shapes against each other, and without
     * g_idx the number of groups against group_size.
     */
    @Override
    public StoredWeight read(SafetensorsReader reader, String prefix) throws ModelException {
        TensorInfo[] entries = StoredEntries.packedInts(reader, prefix, "GPTQ");
        TensorInfo qweight = entries[0];
        TensorInfo qzeros = entries[1];
        TensorInfo scales = entries[2];
        StoredEntries.rank(qweight, 2, "[in * bits / 32, out]");
        StoredEntries.rank(scales, 2, "[groups, out]");
        long in = qweight.shape()[0] * 32 / bits;
        long out = qweight.shape()[1];
        long groups = scales.shape()[0];
        String because = bits + "-bit codes of " + in + " x " + out;
        StoredEntries.shape(scales, new long[] {groups, out}, because);
        StoredEntries.shape(qzeros, new long[] {groups, out * bits / 32}, because);
        int[] gIdx = null;
        if (reader.contains(prefix + ".g_idx")) {
            TensorInfo g = StoredEntries.dtype(reader.info(prefix + ".g_idx"), DType.I32);
            StoredEntries.shape(g, new long[] {in}, because);
            gIdx = reader.ints(g.name());
        } else if (descAct) {
            throw new ModelException("missing tensor " + prefix + ".g_idx (desc_act true needs the group of every column)");
        } else {
            // column i is in group i / group_size: scales of another group count would be read in part, or past
            // their end, as weights the checkpoint does not hold
            long expected = groupSize == -1 ? 1 : (in + groupSize - 1) / groupSize;
            StoredEntries.shape(scales, new long[] {expected, out}, because + " in groups of " + groupSize
                    + " (group_size; no g_idx)");
        }
        try {
            return GroupedIntWeight.of(GptqTensor.fromCheckpoint(bits, (int) in, (int) out, groupSize,
                    reader.ints(qweight.name()), reader.ints(qzeros.name()), reader.floats(scales.name()), gIdx, v1),
                    storedBytes(new long[] {out, in}));
        } catch (QuantFormatException e) {
            throw new ModelException(qweight.file() + ": " + prefix + ": " + e.getMessage(), e);
        }
    }

    @Override
    public ObjectNode quantizationConfig(String torchDtype) {
        ObjectNode q = new ObjectMapper().createObjectNode();
        q.put("bits", bits);
        q.put("checkpoint_format", v1 ? "gptq" : "gptq_v2");
        q.put("desc_act", descAct);
        q.put("group_size", groupSize);
        q.put("quant_method", "gptq");
        q.put("sym", sym);
        return q;
    }

    /** qweight, qzeros, fp16 scales per group and output, and the int32 group index. */
    @Override
    public long storedBytes(long[] shape) {
        long out = shape[0];
        long in = shape[1];
        long groups = groupSize <= 0 ? 1 : (in + groupSize - 1) / groupSize;
        return in * out * bits / 8 + groups * out * bits / 8 + groups * out * 2 + in * 4;
    }

    /** On the device: {@link GroupedIntWeight#deviceBytes}. */
    @Override
    public long deviceBytes(long[] shape) {
        long groups = groupSize <= 0 ? 1 : (shape[1] + groupSize - 1) / groupSize;
        return GroupedIntWeight.deviceBytes(shape[0], shape[1], groups, bits);
    }

    @Override
    public String toString() {
        return describe();
    }
}
