package io.qlora4j.model.format;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.QuantFormatException;
import io.qlora4j.quant.aqlm.AqlmCodes;
import io.qlora4j.quant.aqlm.AqlmScheme;
import io.qlora4j.quant.aqlm.AqlmTensor;
import io.qlora4j.quant.aqlm.NdAqlmTensor;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * AQLM ({@code quant_method: aqlm}), as the {@code aqlm} package and transformers store it: per linear
 * {@code codes [out/og, in/ig, K]} (int8 up to 8 bits per code, int16 above, unsigned values stored minus
 * {@code 2^nbits} from half the range up), fp16 {@code codebooks [K, 2^nbits, og, ig]} and {@code scales
 * [out/og, 1, 1, 1]}; a module listed in {@code linear_weights_not_to_quantize} keeps a plain {@code weight}. The
 * weight is decoded on the compute device per use ({@link NdAqlmTensor}) and multiplied in the compute dtype; the
 * gradient goes to the input only. AQLM needs calibration data, so it cannot be applied on the fly: checkpoints
 * come from the Hub or from {@code qlora4j quantize quantization_method=aqlm dataset=...}.
 *
 * @param scheme codebooks, code width and group sizes
 */
public record AqlmFormat(AqlmScheme scheme) implements BaseFormat {
    static final FormatOption NUM_CODEBOOKS = FormatOption.of("num_codebooks", 1, "AQLM: additive codebooks per group");
    static final FormatOption NBITS = FormatOption.of("nbits_per_codebook", 16, "AQLM: bits per code (codebook size 2^n)");
    static final FormatOption IN_GROUP = FormatOption.of("in_group_size", 8, "AQLM: input columns per code group");
    static final FormatOption OUT_GROUP = FormatOption.of("out_group_size", 1, "AQLM: output rows per code group");
    /** Beam width of the code search (AQLM repository default 1). */
    public static final FormatOption BEAM_SIZE = FormatOption.of("aqlm_beam_size", 1,
            "AQLM quantize: hypotheses the code search keeps");
    /** Epochs of Adam plus beam search at most (default 1000). */
    public static final FormatOption MAX_EPOCHS = FormatOption.of("aqlm_max_epochs", 1000,
            "AQLM quantize: epochs of Adam steps and beam search at most");
    /** Adam steps per epoch (default 100). */
    public static final FormatOption STEPS_PER_EPOCH = FormatOption.of("aqlm_steps_per_epoch", 100,
            "AQLM quantize: Adam steps on codebooks and scales per epoch");
    /** Adam's learning rate (default 1e-4). */
    public static final FormatOption LR = FormatOption.of("aqlm_lr", 1e-4, "AQLM quantize: Adam learning rate");
    /** Relative improvement under which the epochs stop (default 0.01, the README's). */
    public static final FormatOption TOLERANCE = FormatOption.of("aqlm_relative_mse_tolerance", 0.01,
            "AQLM quantize: stop once an epoch improves the error by less than this fraction (0: run all epochs)");
    /** k-means rounds per codebook (default 100). */
    public static final FormatOption INIT_MAX_ITER = FormatOption.of("aqlm_init_max_iter", 100,
            "AQLM quantize: k-means rounds per codebook at initialization");
    /** Calibration sequences of cutoff_len tokens (default 128). */
    public static final FormatOption NSAMPLES = FormatOption.of("aqlm_nsamples", 128,
            "AQLM quantize: calibration sequences of cutoff_len tokens");
    /** Block fine-tune epochs (default 5; 0 turns it off). */
    public static final FormatOption FINETUNE_EPOCHS = FormatOption.of("aqlm_finetune_max_epochs", 5,
            "AQLM quantize: epochs of the block-wise fine-tune of codebooks and scales (0: none)");
    /** Block fine-tune learning rate (default 1e-5). */
    public static final FormatOption FINETUNE_LR = FormatOption.of("aqlm_finetune_lr", 1e-5,
            "AQLM quantize: learning rate of the block-wise fine-tune");
    /** Block fine-tune sequences per step (default 1). */
    public static final FormatOption FINETUNE_BATCH = FormatOption.of("aqlm_finetune_batch_size", 1,
            "AQLM quantize: sequences per step of the block-wise fine-tune");

    /** The registration: {@code quantization_method: aqlm}, and {@code quant_method: aqlm} checkpoints. */
    public static final FormatRegistration REGISTRATION = new FormatRegistration("AQLM", List.of("aqlm"),
            List.of(1, 2, 3, 4, 5, 6, 7, 8),
            List.of(NUM_CODEBOOKS, NBITS, IN_GROUP, OUT_GROUP, BEAM_SIZE, MAX_EPOCHS, STEPS_PER_EPOCH, LR, TOLERANCE,
                    INIT_MAX_ITER, NSAMPLES, FINETUNE_EPOCHS, FINETUNE_LR, FINETUNE_BATCH),
            keys -> new AqlmFormat(new AqlmScheme(keys.integer(NUM_CODEBOOKS), keys.integer(NBITS),
                    keys.integer(IN_GROUP), keys.integer(OUT_GROUP))),
            AqlmFormat::fromConfig);

    private static final String NAME = "AQLM";

    /** The format of an {@code aqlm} quantization_config (transformers' defaults: 1x16 g8, og 1). */
    private static AqlmFormat fromConfig(JsonNode config) {
        if (!"aqlm".equals(config.path("quant_method").asText())) {
            return null;
        }
        int[] v = new int[4];
        String[] fields = {"num_codebooks", "nbits_per_codebook", "in_group_size", "out_group_size"};
        int[] defaults = {1, 16, 8, 1};
        for (int i = 0; i < 4; i++) {
            v[i] = ConfigIntegers.get(config, fields[i], defaults[i]);
        }
        if (v[1] > 16) {
            throw new IllegalArgumentException("nbits_per_codebook " + v[1] + " is not implemented (qlora4j reads 1 to 16)");
        }
        return new AqlmFormat(new AqlmScheme(v[0], v[1], v[2], v[3]));
    }

    /** The stored weight of an AQLM tensor: how the quantize pipeline writes and uploads what it made. */
    public static StoredWeight stored(AqlmTensor tensor) {
        return new Weight(tensor);
    }

    @Override
    public String method() {
        return "aqlm";
    }

    /** About the bits per weight of the codes: {@code K * nbits / (og * ig)}, rounded, 1 to 8. */
    @Override
    public int bits() {
        double b = (double) scheme.numCodebooks() * scheme.nbitsPerCodebook() / scheme.groupSize();
        return (int) Math.max(1, Math.min(8, Math.round(b)));
    }

    @Override
    public String describe() {
        return NAME + " " + scheme;
    }

    @Override
    public Map<String, Object> keys() {
        Map<String, Object> keys = new LinkedHashMap<>();
        keys.put(FormatKeys.METHOD, method());
        keys.put(FormatKeys.BITS, bits());
        keys.put(NUM_CODEBOOKS.name(), scheme.numCodebooks());
        keys.put(NBITS.name(), scheme.nbitsPerCodebook());
        keys.put(IN_GROUP.name(), scheme.inGroupSize());
        keys.put(OUT_GROUP.name(), scheme.outGroupSize());
        return keys;
    }

    /** Whether the module has AQLM entries (codes or codebooks): a module left in float has a weight instead. */
    @Override
    public boolean isStored(SafetensorsReader reader, String prefix) {
        return reader.contains(prefix + ".codes") || reader.contains(prefix + ".codebooks");
    }

    @Override
    public List<String> storedKeys(SafetensorsReader reader, String prefix) {
        return StoredEntries.present(reader, prefix, "codes", "codebooks", "scales");
    }

    /**
     * Reads codes, codebooks and scales, checking them against each other and the scheme; a code outside the
     * codebook, a shape that disagrees with the groups or a missing entry is a one-line error naming the tensor.
     */
    @Override
    public StoredWeight read(SafetensorsReader reader, String prefix) throws ModelException {
        TensorInfo codes = StoredEntries.dtype(StoredEntries.require(reader, prefix + ".codes", NAME),
                DType.I8, DType.I16, DType.I32, DType.I64);
        TensorInfo codebooks = StoredEntries.dtype(StoredEntries.require(reader, prefix + ".codebooks", NAME),
                DType.F16, DType.BF16, DType.F32);
        TensorInfo scales = StoredEntries.dtype(StoredEntries.require(reader, prefix + ".scales", NAME),
                DType.F16, DType.BF16, DType.F32);
        String because = "quantization_config " + schemeFields();
        StoredEntries.rank(codes, 3, "[out/out_group_size, in/in_group_size, num_codebooks]");
        long outGroups = codes.shape()[0];
        long inGroups = codes.shape()[1];
        StoredEntries.shape(codes, new long[] {outGroups, inGroups, scheme.numCodebooks()}, because);
        StoredEntries.shape(codebooks, new long[] {scheme.numCodebooks(), scheme.codebookSize(),
            scheme.outGroupSize(), scheme.inGroupSize()}, because);
        StoredEntries.shape(scales, new long[] {outGroups, 1, 1, 1}, codes.name() + " " + java.util.Arrays.toString(
                codes.shape()));
        int[] unsigned;
        try {
            unsigned = AqlmCodes.unsigned(reader.bytes(codes.name()), codes.dtype().size(),
                    Math.toIntExact(codes.numel()), scheme.nbitsPerCodebook(), codes.name());
        } catch (QuantFormatException e) {
            throw new ModelException(codes.file() + ": " + e.getMessage(), e);
        }
        return new Weight(new AqlmTensor(scheme, outGroups * scheme.outGroupSize(), inGroups * scheme.inGroupSize(),
                unsigned, reader.floats(codebooks.name()), reader.floats(scales.name())));
    }

    private String schemeFields() {
        return String.format(Locale.ROOT, "(num_codebooks %d, nbits_per_codebook %d, out_group_size %d, "
                + "in_group_size %d)", scheme.numCodebooks(), scheme.nbitsPerCodebook(), scheme.outGroupSize(),
                scheme.inGroupSize());
    }

    /** False: see {@link #quantize}. */
    @Override
    public boolean quantizesOnTheFly() {
        return false;
    }

    /** Refused: AQLM learns its codebooks from calibration data, which a streamed weight does not come with. */
    @Override
    public StoredWeight quantize(FloatSource<ModelException> source, long[] shape) throws ModelException {
        throw new ModelException("AQLM cannot quantize on the fly (it needs calibration data): write an AQLM "
                + "checkpoint with `qlora4j quantize quantization_method=aqlm dataset=... export_dir=...` and load that");
    }

    /**
     * The config convert_to_hf.py writes, with an empty {@code linear_weights_not_to_quantize}: the quantize
     * pipeline fills in the names of the model's float weights.
     */
    @Override
    public ObjectNode quantizationConfig(String torchDtype) {
        ObjectNode q = new ObjectMapper().createObjectNode();
        q.put("quant_method", "aqlm");
        q.put("nbits_per_codebook", scheme.nbitsPerCodebook());
        q.put("num_codebooks", scheme.numCodebooks());
        q.put("out_group_size", scheme.outGroupSize());
        q.put("in_group_size", scheme.inGroupSize());
        q.putArray("linear_weights_not_to_quantize");
        return q;
    }

    /** Codes in their stored integer width, fp16 codebooks and one fp16 scale per output group. */
    @Override
    public long storedBytes(long[] shape) {
        long outGroups = shape[0] / scheme.outGroupSize();
        long codes = outGroups * (shape[1] / scheme.inGroupSize()) * scheme.numCodebooks() * (scheme.storageBits() / 8);
        return codes + 2L * scheme.numCodebooks() * scheme.codebookSize() * scheme.groupSize() + 2 * outGroups;
    }

    /** On the device ({@code NdAqlmTensor}) the stored form, with the scales widened to float32. */
    @Override
    public long deviceBytes(long[] shape) {
        return storedBytes(shape) + 2 * (shape[0] / scheme.outGroupSize());
    }

    @Override
    public String toString() {
        return describe();
    }

    /** One AQLM tensor. */
    private record Weight(AqlmTensor tensor) implements StoredWeight {
        @Override
        public long[] shape() {
            return new long[] {tensor.outFeatures(), tensor.inFeatures()};
        }

        @Override
        public long bytes() {
            return new AqlmFormat(tensor.scheme()).storedBytes(shape());
        }

        @Override
        public float[] dequantize() {
            return tensor.decode();
        }

        /** codes (int8 or int16 as aqlm packs them), fp16 codebooks, fp16 scales {@code [out/og, 1, 1, 1]}. */
        @Override
        public void write(SafetensorsWriter writer, String prefix, String torchDtype) throws ModelException {
            AqlmScheme s = tensor.scheme();
            writer.addBytes(prefix + ".codes", s.storageBits() == 8 ? DType.I8 : DType.I16, tensor.codesShape(),
                    AqlmCodes.pack(tensor.codes(), s.nbitsPerCodebook()));
            writer.addFloats(prefix + ".codebooks", DType.F16, tensor.codebooksShape(), tensor.codebooks());
            writer.addFloats(prefix + ".scales", DType.F16, tensor.scalesShape(), tensor.scales());
        }

        @Override
        public BaseLinear upload(NDArray bias, NDManager manager) {
            return new QuantizedLinear(NdAqlmTensor.upload(tensor, manager), bias);
        }
    }
}
