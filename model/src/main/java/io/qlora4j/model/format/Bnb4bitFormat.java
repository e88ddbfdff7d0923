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
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.BnbStateDict;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.QuantFormatException;
import io.qlora4j.quant.QuantType;
import io.qlora4j.quant.QuantizedTensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * bitsandbytes 4-bit ({@code quantization_method: bnb}, {@code quantization_bit: 4}): NF4 or FP4 codes in blocks,
 * optionally with double-quantized scales, byte for byte as bitsandbytes writes them ({@link BlockwiseQuantizer},
 * {@link BnbStateDict}); dequantized on the device in float32 and cast to the compute dtype, as bitsandbytes does.
 *
 * @param type NF4 or FP4 ({@code quantization_type})
 * @param blocksize elements per block ({@code quantization_blocksize}; transformers always uses 64)
 * @param doubleQuant whether the block scales are quantized to 8 bits ({@code double_quantization})
 */
public record Bnb4bitFormat(QuantType type, int blocksize, boolean doubleQuant) implements BaseFormat {
    static final FormatOption TYPE = FormatOption.of("quantization_type", "nf4", "4-bit code book").withChoices("nf4", "fp4");
    static final FormatOption DOUBLE_QUANT = FormatOption.of("double_quantization", true,
            "quantize the 4-bit block scales to 8 bits");
    static final FormatOption BLOCKSIZE = FormatOption.of("quantization_blocksize", 64, "elements per 4-bit block")
            .withChoices("32", "64", "128", "256", "512", "1024", "2048", "4096");

    /** The registration: {@code bnb}/{@code bitsandbytes} at 4 bits, and {@code load_in_4bit} checkpoints. */
    public static final FormatRegistration REGISTRATION = new FormatRegistration("bitsandbytes 4-bit (NF4, FP4)",
            List.of("bnb", "bitsandbytes"), List.of(4), List.of(TYPE, DOUBLE_QUANT, BLOCKSIZE),
            keys -> new Bnb4bitFormat(QuantType.fromName(keys.string(TYPE)), keys.integer(BLOCKSIZE),
                    keys.bool(DOUBLE_QUANT)),
            Bnb4bitFormat::fromConfig);

    /** Dequantizes any 4-bit tensor (a tensor's own type and blocksize apply). */
    private static final BlockwiseQuantizer DEQUANTIZER = BlockwiseQuantizer.builder().build();

    /** QLoRA's: NF4, blocksize 64, double quantization. */
    public static final Bnb4bitFormat QLORA = new Bnb4bitFormat(QuantType.NF4, 64, true);

    /** Checks the type is set; an unsupported blocksize fails here, naming the allowed ones. */
    public Bnb4bitFormat {
        if (type == null) {
            throw new IllegalArgumentException("quantization_type must be nf4 or fp4");
        }
        quantizer(type, blocksize, doubleQuant);
    }

    /** The format of a {@code load_in_4bit} config (transformers' defaults: fp4, no double quantization). */
    private static Bnb4bitFormat fromConfig(JsonNode config) {
        if (!BnbQuantizationConfig.isBnb(config, true)) {
            return null;
        }
        return new Bnb4bitFormat(QuantType.fromName(config.path("bnb_4bit_quant_type").asText("fp4")), 64,
                config.path("bnb_4bit_use_double_quant").asBoolean(false));
    }

    private static BlockwiseQuantizer quantizer(QuantType type, int blocksize, boolean doubleQuant) {
        return BlockwiseQuantizer.builder().optType(type).optBlocksize(blocksize).optDoubleQuant(doubleQuant).build();
    }

    @Override
    public String method() {
        return "bnb";
    }

    @Override
    public int bits() {
        return 4;
    }

    /** {@code bitsandbytes NF4+DQ, blocksize 64}. */
    @Override
    public String describe() {
        return "bitsandbytes " + type.jsonName().toUpperCase(Locale.ROOT) + (doubleQuant ? "+DQ" : "")
                + ", blocksize " + blocksize;
    }

    @Override
    public Map<String, Object> keys() {
        Map<String, Object> keys = new LinkedHashMap<>();
        keys.put(FormatKeys.METHOD, method());
        keys.put(FormatKeys.BITS, bits());
        keys.put(TYPE.name(), type.jsonName());
        keys.put(DOUBLE_QUANT.name(), doubleQuant);
        keys.put(BLOCKSIZE.name(), blocksize);
        return keys;
    }

    /** Whether {@code prefix.weight} comes with a quant state ({@code .quant_state.bitsandbytes__nf4} or {@code __fp4}). */
    @Override
    public boolean isStored(SafetensorsReader reader, String prefix) {
        return BnbStateDict.detect(prefix + ".weight", reader::contains) != null;
    }

    @Override
    public List<String> storedKeys(SafetensorsReader reader, String prefix) {
        String weight = prefix + ".weight";
        return BnbStateDict.keys(weight, BnbStateDict.detect(weight, reader::contains)).stream()
                .filter(reader::contains).toList();
    }

    /** The stored codes and scales; NF4 or FP4, blocksize and double quantization as the quant state records them. */
    @Override
    public StoredWeight read(SafetensorsReader reader, String prefix) throws ModelException {
        String weightKey = prefix + ".weight";
        QuantType stored = BnbStateDict.detect(weightKey, reader::contains);
        Map<String, BnbStateDict.Entry> entries = StateEntries.read(reader, BnbStateDict.keys(weightKey, stored));
        try {
            return new Weight(BnbStateDict.read(weightKey, stored, entries::get));
        } catch (QuantFormatException e) {
            throw new ModelException(reader.info(weightKey).file() + ": " + e.getMessage(), e);
        }
    }

    /** Quantized a chunk of blocks at a time, on every core, straight from {@code source}. */
    @Override
    public StoredWeight quantize(FloatSource<ModelException> source, long[] shape) throws ModelException {
        return new Weight(quantizer(type, blocksize, doubleQuant).quantize(source, shape));
    }

    @Override
    public ObjectNode quantizationConfig(String torchDtype) {
        return BnbQuantizationConfig.of(true, torchDtype, type.jsonName(), doubleQuant, 6.0);
    }

    /** Packed codes plus float32 block scales, or u8 scale codes plus a float32 absmax per 256 of them. */
    @Override
    public long storedBytes(long[] shape) {
        long n = shape[0] * shape[1];
        long blocks = (n + blocksize - 1) / blocksize;
        return (n + 1) / 2 + (doubleQuant ? blocks + 4 * ((blocks + 255) / 256) : 4 * blocks);
    }

    /**
     * On the device ({@code NdQuantizedTensor}): the packed codes of whole blocks, the 256-entry code table as float32
     * pairs, and float32 block scales, or with double quantization the u8 scale codes of whole groups of 256, their
     * float32 absmax, the 256-entry dynamic map and the offset.
     */
    @Override
    public long deviceBytes(long[] shape) {
        long blocks = (shape[0] * shape[1] + blocksize - 1) / blocksize;
        long packed = blocks * blocksize / 2 + 256L * 2 * Float.BYTES;
        long nested = (blocks + 255) / 256;
        return packed + (doubleQuant ? nested * 256 + Float.BYTES * nested + 256L * Float.BYTES + Float.BYTES
                : Float.BYTES * blocks);
    }

    @Override
    public String toString() {
        return describe();
    }

    /** One bitsandbytes 4-bit tensor. */
    private record Weight(QuantizedTensor tensor) implements StoredWeight {
        @Override
        public long[] shape() {
            return tensor.shape().clone();
        }

        @Override
        public long bytes() {
            return tensor.bytes();
        }

        @Override
        public float[] dequantize() {
            return DEQUANTIZER.dequantize(tensor);
        }

        /** The packed codes, scales, maps and the JSON quant state recording {@code torchDtype}. */
        @Override
        public void write(SafetensorsWriter writer, String prefix, String torchDtype) throws ModelException {
            StateEntries.write(writer, BnbStateDict.entries(prefix + ".weight", tensor, torchDtype));
        }

        @Override
        public BaseLinear upload(NDArray bias, NDManager manager) {
            return QuantizedLinear.upload(tensor, bias, manager);
        }
    }
}
