package io.qlora4j.model.family;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.BaseRewrite;
import io.qlora4j.model.DenseEmbedding;
import io.qlora4j.model.Float16Weight;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.RowChunks;
import io.qlora4j.model.TokenEmbedding;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.DecoderBlock;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.TransformerBlock;
import io.qlora4j.model.decoder.TransformerLM;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.StoredWeight;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.FloatSource;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.function.Consumer;

/**
 * Loads a Hugging Face directory ({@code config.json} plus {@code model.safetensors} or shards) of any registered
 * family ({@link ModelFamilies}) into a {@link CausalLM}, streaming tensor by tensor: every shape is checked against the config
 * before any data is read, each linear weight of {@code model.layers.*} is brought into the base format
 * ({@link BaseFormat}: the checkpoint's own when it is pre-quantized, else the one set, dense by default),
 * quantized straight from the file a chunk at a time and uploaded, so no float32 copy of it exists; embed_tokens and lm_head are held in 16 bits whenever that is exact ({@link Float16Weight}, as
 * QLoRA keeps them in bf16), else in float32; norms stay float32. Large matrices reach the device in row
 * chunks. The full-precision model never exists in memory: the peak is the loaded model plus about one tensor.
 */
public final class ModelLoader {
    /** Elements copied to the device at once for a dense tensor. */
    private static final int CHUNK_ELEMENTS = 1 << 22;

    private final BaseFormat format;
    private final BaseRewrite rewrite;
    private final boolean float32Embeddings;
    private final boolean float16Projections;
    private final DataType computeType;
    private final Consumer<String> warnings;

    private ModelLoader(Builder builder) {
        this.format = builder.format;
        this.rewrite = builder.rewrite;
        this.float32Embeddings = builder.float32Embeddings;
        this.float16Projections = builder.float16Projections;
        this.computeType = builder.computeType;
        this.warnings = builder.warnings;
    }

    /** A loader that keeps every weight dense float32 unless a base format is set. */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * Loads {@code modelDir} into {@code manager}'s device. Problems (missing config or tensor, a shape
     * that disagrees with the config, a pre-quantized checkpoint of another format than the one set, or one
     * qlora4j cannot read) are one-line errors naming them. Tensors the config does not call for are left unread
     * and named in one warning ({@link #unusedTensors}), as transformers loads such a checkpoint and warns.
     *
     * <p>The load ends with one full garbage collection. The rows widened from the checkpoint and the quantizers'
     * work arrays grow the Java heap, and G1 keeps that heap committed, resident through the training that follows,
     * until a full collection lets it hand the memory back: measured on TinyLlama-1.1B quantized to HQQ 4-bit, 412 MB
     * committed after the load for 110 MB in use, and 1,195 MB RSS after the load against 1,033 MB half a second after
     * {@code System.gc()} (NF4+DQ: 985 and 942 MB). The SIMD decoding's warm-up garbage, where it runs
     * ({@code Simd}, from the first packed weight's upload), goes with it.
     */
    public CausalLM load(Path modelDir, NDManager manager) throws ModelException {
        DecoderConfig config = ModelFamilies.read(modelDir.resolve("config.json"));
        BaseFormat stored = BaseFormats.stored(modelDir);
        BaseFormats.forModel(modelDir, format);
        CausalLM model;
        try (SafetensorsReader reader = SafetensorsReader.open(modelDir)) {
            checkTensors(config, reader, stored);
            warnUnused(config, reader, stored, modelDir);
            NDManager arrays = manager.newSubManager();
            try {
                model = assemble(config, reader, stored, arrays);
            } catch (ModelException | RuntimeException e) {
                arrays.close();
                throw e;
            }
        }
        System.gc();
        return model;
    }

    /**
     * Every tensor the config calls for, with its shape, in checkpoint order: what {@link #load} checks
     * a checkpoint against, and what a writer of a compatible checkpoint must produce.
     */
    public static Map<String, long[]> expectedShapes(DecoderConfig c) {
        return c.tensorShapes();
    }

    /**
     * Checks that {@code reader} holds every tensor {@code config} calls for, each with its shape, before any data
     * is read; a linear that {@code stored} (the checkpoint's format, or null) holds is checked when it is read.
     *
     * @throws ModelException naming the first missing or misshapen tensor
     */
    public static void checkTensors(DecoderConfig config, SafetensorsReader reader, BaseFormat stored)
            throws ModelException {
        if (stored != null) {
            requireStoredProjection(config, reader, stored);
        }
        Map<String, long[]> expected = expectedShapes(config);
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            check(reader, e.getKey(), e.getValue(), stored);
        }
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            for (String name : config.linearNames()) {
                String bias = "model.layers." + l + "." + name + ".bias";
                if (reader.contains(bias) && !expected.containsKey(bias) && stored != null && stored.keepsBiases()) {
                    check(reader, bias, new long[] {config.inOut(name)[1]}, null);
                } else if (reader.contains(bias) && !expected.containsKey(bias)) {
                    String key = config.family().biasKey(name);
                    throw new ModelException(reader.info(bias).file() + ": tensor " + bias + " is a bias, but "
                            + (key != null ? "the config says " + key + " is false; set it to true in config.json or"
                            : "a " + config.modelType() + " model has no bias on " + name + ";")
                            + " remove the tensor");
                }
            }
        }
    }

    /**
     * The tensors of {@code reader} that a model of {@code config} does not read, in checkpoint order: those of layers
     * past {@code num_hidden_layers}, of modules the family lacks, or of another model's naming. A tied
     * {@code lm_head.weight} and the {@code rotary_emb.inv_freq} buffers older checkpoints carry are not counted:
     * both are derived from what is read, and transformers passes over them without a warning.
     *
     * @param stored the checkpoint's format ({@link BaseFormats#stored}), or null for a float checkpoint
     */
    private static List<String> unusedTensors(DecoderConfig config, SafetensorsReader reader, BaseFormat stored)
            throws ModelException {
        Set<String> read = new HashSet<>(expectedShapes(config).keySet());
        read.add("lm_head.weight");
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            for (String name : config.linearNames()) {
                String prefix = "model.layers." + l + "." + name;
                read.add(prefix + ".bias");
                if (stored != null && stored.isStored(reader, prefix)) {
                    read.addAll(stored.storedKeys(reader, prefix));
                }
            }
        }
        List<String> unused = new ArrayList<>();
        for (TensorInfo info : reader.tensors()) {
            if (!read.contains(info.name()) && !info.name().endsWith(".rotary_emb.inv_freq")) {
                unused.add(info.name());
            }
        }
        return unused;
    }

    private void warnUnused(DecoderConfig config, SafetensorsReader reader, BaseFormat stored, Path modelDir)
            throws ModelException {
        List<String> unused = unusedTensors(config, reader, stored);
        if (!unused.isEmpty()) {
            warnings.accept(reader.info(unused.get(0)).file() + ": " + unused.size() + " tensor"
                    + (unused.size() == 1 ? "" : "s") + " that " + modelDir.resolve("config.json")
                    + " does not call for, left unread (the first: " + unused.get(0) + "); does the config"
                    + " describe this checkpoint (num_hidden_layers " + config.numHiddenLayers() + ", model_type "
                    + config.modelType() + ")?");
        }
    }

    /**
     * Refuses a checkpoint whose config.json declares a {@code quantization_config} while no projection is stored in
     * that format: a float checkpoint with a copied config would otherwise load as float and be labelled (and its
     * adapters merged) as quantized. A format may keep some modules in float; it must store one at least.
     */
    public static void requireStoredProjection(DecoderConfig config, SafetensorsReader reader, BaseFormat stored)
            throws ModelException {
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            for (String name : config.linearNames()) {
                if (stored.isStored(reader, "model.layers." + l + "." + name)) {
                    return;
                }
            }
        }
        String first = "model.layers.0." + config.linearNames().get(0);
        boolean floatWeight = reader.contains(first + ".weight");
        throw new ModelException((floatWeight ? reader.info(first + ".weight").file().resolveSibling("config.json")
                : "config.json") + ": quantization_config says the linear layers are stored in "
                + stored.describe() + ", but the checkpoint stores none that way (" + first + " has "
                + (floatWeight ? "a float weight" : "no weight") + "); remove quantization_config"
                + " for a float checkpoint, or point to the quantized one");
    }

    private static void check(SafetensorsReader reader, String name, long[] shape, BaseFormat stored)
            throws ModelException {
        if (stored != null && name.endsWith(".weight")
                && stored.isStored(reader, name.substring(0, name.length() - ".weight".length()))) {
            return; // the format's entries: checked against each other and the config when the layer is read
        }
        if (!reader.contains(name)) {
            throw new ModelException("missing tensor " + name + " (the config calls for shape "
                    + Arrays.toString(shape) + ")");
        }
        TensorInfo info = reader.info(name);
        if (!Arrays.equals(info.shape(), shape)) {
            throw new ModelException(info.file() + ": tensor " + name + " has shape " + Arrays.toString(info.shape())
                    + ", expected " + Arrays.toString(shape) + " for this config");
        }
    }

    private CausalLM assemble(DecoderConfig config, SafetensorsReader reader, BaseFormat stored, NDManager arrays)
            throws ModelException {
        TokenEmbedding embed = table(reader, "model.embed_tokens.weight", arrays);
        List<DecoderBlock> blocks = new ArrayList<>();
        for (int l = 0; l < config.numHiddenLayers(); l++) {
            blocks.add(block(config, reader, stored, l, arrays));
        }
        NDArray norm = dense(reader, "model.norm.weight", arrays);
        LinearLayer head = config.tieWordEmbeddings() ? null : table(reader, "lm_head.weight", arrays).asLinear();
        return new TransformerLM(config, embed, blocks, norm, head, computeType);
    }

    /**
     * Decoder block {@code layer} of a checkpoint whose linears {@code stored} holds pre-quantized (null for a float
     * checkpoint), its projections in the loader's format: what {@link #load} assembles the model from, and how a
     * job that runs a model one block at a time (AQLM's calibration) reads it.
     */
    public DecoderBlock block(DecoderConfig config, SafetensorsReader reader, BaseFormat stored, int layer,
            NDManager arrays) throws ModelException {
        String p = "model.layers." + layer + ".";
        Map<String, LinearLayer> linears = new LinkedHashMap<>();
        for (String name : config.linearNames()) {
            long[] inOut = config.inOut(name);
            boolean biased = config.biases().contains(name)
                    || (stored != null && stored.keepsBiases() && reader.contains(p + name + ".bias"));
            linears.put(name, linear(reader, p + name, new long[] {inOut[1], inOut[0]}, biased, stored, arrays));
        }
        Map<String, NDArray> norms = new LinkedHashMap<>();
        for (String norm : config.normShapes().keySet()) {
            norms.put(norm, dense(reader, p + norm + ".weight", arrays));
        }
        return new TransformerBlock(config, layer, norms, linears);
    }

    /**
     * A projection: a pre-quantized weight stays as stored ({@code stored}, the checkpoint's format); a float one
     * is converted to the loader's format (a module a pre-quantized checkpoint keeps in float stays dense). Its bias,
     * when the config gives it one, stays dense.
     */
    private LinearLayer linear(SafetensorsReader reader, String prefix, long[] expectedShape, boolean biased,
            BaseFormat stored, NDManager arrays) throws ModelException {
        NDArray bias = biased ? dense(reader, prefix + ".bias", arrays) : null;
        if (stored != null && stored.isStored(reader, prefix)) {
            if (rewrite != null && rewrite.rewrites(prefix)) {
                throw new ModelException(reader.info(stored.storedKeys(reader, prefix).get(0)).file() + ": " + prefix
                        + " is stored in " + stored.describe() + ", but the adapter's initialisation rewrites its base"
                        + " from the full-precision weight (PiSSA, LoftQ); load the float checkpoint instead");
            }
            StoredWeight w = stored.read(reader, prefix);
            if (!Arrays.equals(w.shape(), expectedShape)) {
                throw new ModelException(reader.info(stored.storedKeys(reader, prefix).get(0)).file() + ": "
                        + stored.describe() + " weight " + prefix
                        + " has shape " + Arrays.toString(w.shape()) + ", expected " + Arrays.toString(expectedShape)
                        + " for this config");
            }
            return w.upload(bias, arrays);
        }
        BaseFormat target = stored != null ? BaseFormats.DENSE : format;
        if (rewrite != null && rewrite.rewrites(prefix)) {
            float[] w = rewrite.rewrite(prefix, reader.floats(prefix + ".weight"), expectedShape, target, arrays);
            return target.quantize(FloatSource.of(w), expectedShape).upload(bias, arrays);
        }
        Float16Weight half = float16Projections && target == BaseFormats.DENSE
                ? Float16Weight.read(reader, prefix + ".weight", bias, arrays) : null;
        return half != null ? half : target.load(reader, prefix, bias, arrays);
    }

    /** A [vocab, hidden] matrix: exact float16 rows unless float32 is asked for or needed. */
    private TokenEmbedding table(SafetensorsReader reader, String name, NDManager arrays) throws ModelException {
        Float16Weight half = float32Embeddings ? null : Float16Weight.read(reader, name, arrays);
        return half != null ? half : new DenseEmbedding(dense(reader, name, arrays));
    }

    /** A float32 array of the tensor; a large matrix is filled in row chunks so no full float[] copy exists. */
    private static NDArray dense(SafetensorsReader reader, String name, NDManager arrays) throws ModelException {
        return dense(reader, name, arrays, CHUNK_ELEMENTS);
    }

    /** {@link #dense} with an explicit chunk size (elements), for tests of the chunked path. */
    static NDArray dense(SafetensorsReader reader, String name, NDManager arrays, int chunkElements)
            throws ModelException {
        long[] shape = reader.info(name).shape();
        long rowsPerChunk = shape.length == 2 ? Math.max(1, chunkElements / Math.max(1, shape[1])) : 0;
        if (shape.length != 2 || rowsPerChunk >= shape[0]) {
            return arrays.create(reader.floats(name), new Shape(shape));
        }
        return RowChunks.upload(reader, name, arrays, DataType.FLOAT32, chunkElements, RowChunks.FLOAT32);
    }

    /** Settings of a {@link ModelLoader}. */
    public static final class Builder {
        private BaseFormat format = BaseFormats.DENSE;
        private BaseRewrite rewrite;
        private boolean float32Embeddings;
        private boolean float16Projections;
        private DataType computeType = DataType.FLOAT32;
        private Consumer<String> warnings = line -> System.err.println("warning: " + line);

        private Builder() {}

        /**
         * The base format every linear weight of the decoder blocks is converted to while loading (default
         * {@link BaseFormats#DENSE}); a pre-quantized checkpoint keeps its own format, and one of another method or
         * bit width than a quantized {@code format} is refused.
         */
        public Builder optFormat(BaseFormat format) {
            this.format = format == null ? BaseFormats.DENSE : format;
            return this;
        }

        /**
         * Rewrites the full-precision weights of the projections {@code value} chooses before the base format stores
         * them (PiSSA's residual, LoftQ's quantized residual); default null: none. A projection a pre-quantized
         * checkpoint stores cannot be rewritten and is refused by name.
         */
        public Builder optBaseRewrite(BaseRewrite value) {
            this.rewrite = value;
            return this;
        }

        /**
         * Keeps embed_tokens and lm_head as float32 arrays, the form full fine-tuning trains; otherwise (the
         * default) they are held in 16 bits wherever the checkpoint's values allow it exactly.
         */
        public Builder optFloat32Embeddings(boolean float32Embeddings) {
            this.float32Embeddings = float32Embeddings;
            return this;
        }

        /**
         * Holds the dense projections of the decoder blocks in 16 bits wherever the checkpoint's values allow it
         * exactly ({@link Float16Weight}, else float32): a frozen base read through {@code withWeight} (CVXQ's
         * calibration), never trained; default false, float32 as the dense format keeps them.
         */
        public Builder optFloat16Projections(boolean float16Projections) {
            this.float16Projections = float16Projections;
            return this;
        }

        /**
         * The dtype the model computes in: float32 (default), or float16 on a GPU; the stored weights stay as
         * they are (4-bit, 16-bit rows, float32 norms) and are cast per use.
         */
        public Builder optComputeType(DataType computeType) {
            this.computeType = computeType;
            return this;
        }

        /**
         * Where a load's warning lines go (without a {@code warning: } prefix); default: standard error, prefixed.
         */
        public Builder optWarnings(Consumer<String> warnings) {
            this.warnings = warnings;
            return this;
        }

        /** Builds the loader. */
        public ModelLoader build() {
            return new ModelLoader(this);
        }
    }
}
