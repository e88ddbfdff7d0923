package io.qlora4j.adapters;

import ai.djl.Device;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.checkpoint.ModelFiles;
import io.qlora4j.model.checkpoint.OutputDirectory;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.StoredWeight;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.quant.HalfFloats;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.FloatSource;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Merges LoRA adapters into a base model and writes the result as a Hugging Face checkpoint: every block
 * projection an adapter touches becomes the adapter variant's merge of it ({@code W' = W + scaling * B @ A} for
 * LoRA; several adapters merged in order), with {@code W} the checkpoint's weight or its round trip through the
 * base format the adapter was trained over ({@link MergeBase}; a pre-quantized checkpoint's stored weights,
 * dequantized); the weights are written as bf16/fp16/fp32 safetensors shards or re-quantized to any
 * {@link BaseFormat}, with the base's config (with the output format's quantization_config, or none), tokenizer and
 * generation files, and a model card.
 *
 * <p>The base streams one tensor at a time from its shards to the output shards and each adapter's matrices are
 * read when their module comes, so memory stays near the largest tensor whatever the model's size. The output is
 * written to a hidden sibling of the export directory and renamed into place at the end: an interrupted export
 * leaves no half-written directory. Everything the user can get wrong (adapter for another architecture, shapes
 * that do not fit, a merge base the checkpoint cannot give) is refused when the export is built.
 */
public final class MergedExport {
    private final Path baseDir;
    private final List<Path> adapterDirs;
    private final DecoderConfig config;
    private final Map<String, long[]> projections;
    private final BaseFormat stored;
    private final MergeBase mergeBase;
    private final BaseFormat baseQuantization;
    private final DType dtype;
    private final long maxShardBytes;
    private final BaseFormat requantize;
    private final Device device;
    private final List<String> adapterLines;
    private final InitialAdapter start;
    private final ExtraFiles extraFiles;

    private MergedExport(Builder b, DecoderConfig config, Map<String, long[]> projections, BaseFormat stored,
            MergeBase mergeBase, BaseFormat baseQuantization, List<String> adapterLines, InitialAdapter start) {
        this.baseDir = b.baseDir;
        this.adapterDirs = List.copyOf(b.adapterDirs);
        this.config = config;
        this.projections = projections;
        this.stored = stored;
        this.mergeBase = mergeBase;
        this.baseQuantization = baseQuantization;
        this.dtype = b.dtype;
        this.maxShardBytes = b.maxShardBytes;
        this.requantize = b.requantize;
        this.device = b.device;
        this.adapterLines = adapterLines;
        this.start = start;
        this.extraFiles = b.extraFiles;
    }

    /**
     * Files a caller writes beside the export's weights, config and copied tokenizer files, in the directory that
     * becomes the export once every file is written (so a failure leaves no half-written export).
     */
    @FunctionalInterface
    public interface ExtraFiles {
        /** Writes into (or rewrites files of) {@code dir}, the export being staged. */
        void write(Path dir) throws IOException;
    }

    /** Starts an export of {@code baseDir} (a Hugging Face Llama directory) merged with the adapters, in order. */
    public static Builder builder(Path baseDir, List<Path> adapterDirs) {
        return new Builder(baseDir, adapterDirs);
    }

    /** The base model directory. */
    public Path baseDir() {
        return baseDir;
    }

    /** The adapter directories, in merge order. */
    public List<Path> adapterDirs() {
        return adapterDirs;
    }

    /** The weights the adapters are added to, as resolved from the setting, the adapters and the checkpoint. */
    public MergeBase mergeBase() {
        return mergeBase;
    }

    /**
     * The base format the projections go through before the merge: set for {@link MergeBase#DEQUANTIZED} on a
     * full-precision base; null for {@link MergeBase#ORIGINAL} and for a pre-quantized base (its stored format
     * applies).
     */
    public BaseFormat baseQuantization() {
        return baseQuantization;
    }

    /** The format the base checkpoint stores its projections in, or null for a full-precision checkpoint. */
    public BaseFormat storedFormat() {
        return stored;
    }

    /** What one export wrote and how fast. */
    public record Report(int tensors, int mergedModules, long bytesRead, long bytesWritten, double seconds) {
        /** Base checkpoint bytes streamed per second. */
        public double bytesPerSecond() {
            return bytesRead / seconds;
        }
    }

    /**
     * Writes the merged model to {@code exportDir}, which must not exist or be empty.
     *
     * @throws ModelException naming the directory, file or tensor when something cannot be read or written
     */
    public Report writeTo(Path exportDir) throws ModelException {
        long start = System.nanoTime();
        List<PeftAdapterFile> adapters = new ArrayList<>();
        try (OutputDirectory out = OutputDirectory.create(exportDir);
                SafetensorsReader reader = SafetensorsReader.open(baseDir);
                NDManager manager = NDManager.newBaseManager(device)) {
            for (Path dir : adapterDirs) {
                adapters.add(PeftAdapterFile.open(dir, projections, config.numHiddenLayers()));
            }
            Counts counts;
            long written;
            try (SafetensorsWriter writer = SafetensorsWriter.builder(out.path()).optMaxShardBytes(maxShardBytes).build()) {
                counts = copyTensors(reader, adapters, writer, manager);
                written = writer.totalBytes();
            }
            writeConfig(out.path());
            ModelFiles.copyCompanionFiles(baseDir, out.path());
            if (extraFiles != null) {
                extraFiles.write(out.path());
            }
            ModelCard card = new ModelCard(baseDir, stored, adapterLines, mergeBase, baseQuantization,
                    torchDtype(dtype), requantize);
            Files.writeString(out.path().resolve("README.md"), card.text(exportDir), StandardCharsets.UTF_8);
            out.commit();
            return new Report(counts.tensors(), counts.merged(), counts.read(), written,
                    (System.nanoTime() - start) / 1e9);
        } catch (IOException e) {
            throw new ModelException(exportDir + ": cannot write the merged model: " + e.getMessage(), e);
        } finally {
            adapters.forEach(PeftAdapterFile::close);
        }
    }

    /** Tensors written, projections merged, base bytes read. */
    private record Counts(int tensors, int merged, long read) {}

    /**
     * Streams the base: each block projection, at the first of the entries that store it, is read (dequantized when
     * pre-quantized, or put through the base format of a dequantized merge), merged and written in the output
     * format; its other entries are skipped; every other tensor is copied.
     */
    private Counts copyTensors(SafetensorsReader reader, List<PeftAdapterFile> adapters, SafetensorsWriter writer,
            NDManager manager) throws ModelException {
        Map<String, String> moduleOfKey = new HashMap<>();
        for (String module : projections.keySet()) {
            for (String key : storing(reader, module).storedKeys(reader, module)) {
                moduleOfKey.put(key, module);
            }
        }
        Set<String> written = new HashSet<>();
        int tensors = 0;
        int merged = 0;
        long read = 0;
        for (TensorInfo t : reader.tensors()) {
            read += t.byteSize();
            String name = t.name();
            String module = moduleOfKey.get(name);
            if ((config.tieWordEmbeddings() && name.equals("lm_head.weight")) || (module != null && !written.add(module))) {
                continue;
            }
            tensors++;
            if (module == null) {
                copy(reader, t, writer);
                continue;
            }
            long[] inOut = projections.get(module);
            long[] shape = {inOut[1], inOut[0]};
            float[] w = start != null && start.rewrites(module) ? rewrittenWeight(reader, module, shape, manager)
                    : baseWeight(reader, module, shape);
            List<PeftAdapterFile> touching = adapters.stream().filter(a -> a.modules().containsKey(module)).toList();
            if (!touching.isEmpty()) {
                merge(manager, w, shape, module, touching);
                merged++;
            }
            if (requantize == null) {
                writer.addFloats(module + ".weight", dtype, shape, w);
            } else {
                requantize.quantize(FloatSource.of(inDtype(w, dtype)), shape).write(writer, module, torchDtype(dtype));
            }
        }
        return new Counts(tensors, merged, read);
    }

    /**
     * {@code w} rounded in place to {@code dtype} (to nearest, ties to even, as {@code tensor.to(dtype)}): a
     * re-quantized export quantizes the merged model as the export dtype holds it, the values transformers would
     * quantize from a model saved in that dtype, and which its quant state names; float32 stays as it is.
     */
    private static float[] inDtype(float[] w, DType dtype) {
        for (int i = 0; i < w.length && dtype != DType.F32; i++) {
            w[i] = dtype == DType.BF16 ? HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(w[i])) : HalfFloats.roundToF16(w[i]);
        }
        return w;
    }

    /** The format the checkpoint holds the projection {@code module} in: its stored format, or dense. */
    private BaseFormat storing(SafetensorsReader reader, String module) {
        return stored != null && stored.isStored(reader, module) ? stored : BaseFormats.DENSE;
    }

    /** A block projection before the merge: as stored in float, its round trip through the base format, or decoded. */
    private float[] baseWeight(SafetensorsReader reader, String module, long[] shape) throws ModelException {
        if (storing(reader, module) != BaseFormats.DENSE) {
            StoredWeight w = stored.read(reader, module);
            if (!Arrays.equals(w.shape(), shape)) {
                throw new ModelException(baseDir + ": " + stored.describe() + " weight " + module + " has shape "
                        + Arrays.toString(w.shape()) + ", expected " + Arrays.toString(shape) + " for this config");
            }
            return w.dequantize();
        }
        String name = module + ".weight";
        if (baseQuantization == null) {
            return reader.floats(name);
        }
        return baseQuantization.quantize(reader.floatSource(name), shape).dequantize();
    }

    /**
     * A projection whose adapter's start rewrote the base (PiSSA, LoftQ): the start's split of the full-precision
     * weight, in the format the adapter trained over (through its round trip for a dequantized merge, as is for an
     * original one).
     */
    private float[] rewrittenWeight(SafetensorsReader reader, String module, long[] shape, NDManager manager)
            throws ModelException {
        BaseFormat format = baseQuantization == null ? BaseFormats.DENSE : baseQuantization;
        float[] w = start.rewrite(module, reader.floats(module + ".weight"), shape, format, manager);
        return format == BaseFormats.DENSE ? w : format.quantize(FloatSource.of(w), shape).dequantize();
    }

    /**
     * Replaces {@code w} in place by its merge with each adapter, in order, as the adapter's variant defines it
     * ({@code W + scaling * B @ A} for LoRA, DoRA's rescaled rows): in float32 on the export device, one projection
     * at a time.
     */
    private static void merge(NDManager manager, float[] w, long[] shape, String module, List<PeftAdapterFile> adapters)
            throws ModelException {
        for (PeftAdapterFile adapter : adapters) {
            PeftAdapterFile.Module lora = adapter.modules().get(module);
            try (NDManager m = manager.newSubManager()) {
                Map<String, NDArray> extras = new LinkedHashMap<>();
                for (Map.Entry<String, TensorInfo> e : lora.extras().entrySet()) {
                    extras.put(e.getKey(), array(m, adapter, e.getValue()));
                }
                AdapterTensors tensors = new AdapterTensors(array(m, adapter, lora.a()), array(m, adapter, lora.b()),
                        extras, lora.settings().scaling());
                float[] merged = lora.settings().variant().merge(m.create(w, new Shape(shape)), tensors).toFloatArray();
                System.arraycopy(merged, 0, w, 0, w.length);
            }
        }
    }

    private static NDArray array(NDManager m, PeftAdapterFile adapter, TensorInfo t) throws ModelException {
        return m.create(adapter.floats(t), new Shape(t.shape()));
    }

    /** Any other tensor: floating point ones in the export dtype (bytes copied when it is already), others as stored. */
    private void copy(SafetensorsReader reader, TensorInfo t, SafetensorsWriter writer) throws ModelException {
        boolean floating = t.dtype() == DType.F32 || t.dtype() == DType.F16 || t.dtype() == DType.BF16
                || t.dtype() == DType.F64;
        if (floating && t.dtype() != dtype) {
            writer.addFloats(t.name(), dtype, t.shape(), reader.floats(t.name()));
        } else {
            writer.addFrom(reader, t.name());
        }
    }

    private void writeConfig(Path dir) throws ModelException, IOException {
        ObjectNode json = ModelFiles.readConfig(baseDir);
        json.remove("quantization_config");
        json.put("torch_dtype", torchDtype(dtype));
        if (json.has("dtype")) {
            json.put("dtype", torchDtype(dtype));
        }
        if (requantize != null) {
            json.set("quantization_config", requantize.quantizationConfig(torchDtype(dtype)));
        }
        ModelFiles.writeConfig(dir, json);
    }

    /** The name transformers gives a dtype in config.json and quant states. */
    static String torchDtype(DType dtype) {
        return switch (dtype) {
            case BF16 -> "bfloat16";
            case F16 -> "float16";
            default -> "float32";
        };
    }

    /** Settings of a {@link MergedExport}; DJL-style {@code opt*} setters. */
    public static final class Builder {
        private final Path baseDir;
        private final List<Path> adapterDirs;
        private MergeBase mergeBase;
        private BaseFormat fallbackQuantization = BaseFormats.QLORA;
        private DType dtype = DType.BF16;
        private long maxShardBytes = 5_000_000_000L;
        private BaseFormat requantize;
        private Device device = Device.cpu();
        private ExtraFiles extraFiles;

        private Builder(Path baseDir, List<Path> adapterDirs) {
            this.baseDir = baseDir;
            this.adapterDirs = List.copyOf(adapterDirs);
        }

        /**
         * The weights to add to (default: {@link MergeBase#DEQUANTIZED} when an adapter records a quantized base or
         * the checkpoint is pre-quantized, else {@link MergeBase#ORIGINAL}); null restores the default.
         */
        public Builder optMergeBase(MergeBase value) {
            this.mergeBase = value;
            return this;
        }

        /**
         * The base format of a dequantized merge when no adapter records the one it was trained over (default
         * QLoRA's NF4+DQ).
         */
        public Builder optBaseQuantization(BaseFormat value) {
            this.fallbackQuantization = value;
            return this;
        }

        /** The dtype of the written weights: BF16 (default, rounded to nearest even), F16 or F32. */
        public Builder optDtype(DType value) {
            if (value != DType.BF16 && value != DType.F16 && value != DType.F32) {
                throw new IllegalArgumentException("export dtype must be BF16, F16 or F32, got " + value);
            }
            this.dtype = value;
            return this;
        }

        /** Tensor bytes per output shard (default 5 GB, LLaMA-Factory's export_size). */
        public Builder optMaxShardBytes(long value) {
            if (value <= 0) {
                throw new IllegalArgumentException("maxShardBytes must be positive, got " + value);
            }
            this.maxShardBytes = value;
            return this;
        }

        /** Writes the merged block projections in this base format (default null or dense: bf16/fp16/fp32). */
        public Builder optRequantize(BaseFormat value) {
            this.requantize = value == BaseFormats.DENSE ? null : value;
            return this;
        }

        /** Further files of the export ({@code Modelfile}, the template's tokenizer settings); default none. */
        public Builder optExtraFiles(ExtraFiles value) {
            this.extraFiles = value;
            return this;
        }

        /** Where {@code B @ A} is computed (default the CPU), always in float32. */
        public Builder optDevice(Device value) {
            this.device = value;
            return this;
        }

        /**
         * Reads the base config and every adapter and checks them against each other (shapes, module names,
         * target modules, the merge base); nothing is written.
         *
         * @throws ModelException one line naming the file and key or tensor at fault
         */
        public MergedExport build() throws ModelException {
            DecoderConfig config = ModelFamilies.read(baseDir.resolve("config.json"));
            Map<String, long[]> projections = TargetModules.projections(config);
            BaseFormat stored = BaseFormats.stored(baseDir);
            if (adapterDirs.isEmpty() && stored == null) {
                // without adapters an export decodes a pre-quantized checkpoint; a float one has nothing to do
                throw new ModelException("no adapter to merge (adapter_name_or_path is empty) and " + baseDir
                        + " is not quantized");
            }
            try (SafetensorsReader reader = SafetensorsReader.open(baseDir)) {
                ModelLoader.checkTensors(config, reader, stored);
                if (requantize == null || !requantize.keepsBiases()) {
                    refuseUndeclaredBiases(config, reader, stored);
                }
            }
            Set<BaseFormat> recorded = new LinkedHashSet<>();
            List<String> lines = new ArrayList<>();
            InitialAdapter start = InitialAdapter.of(adapterDirs, config);
            if (start != null && stored != null) {
                throw new ModelException(adapterDirs.get(0) + ": " + start.init().describe() + " rebuilds its base from"
                        + " full-precision weights, but " + baseDir + " stores its projections in " + stored.describe());
            }
            for (Path dir : adapterDirs) {
                try (PeftAdapterFile file = PeftAdapterFile.open(dir, projections, config.numHiddenLayers())) {
                    if (file.trainedOn() != null && file.trainedOn() != BaseFormats.DENSE) {
                        recorded.add(file.trainedOn());
                    }
                    lines.add(file.describe());
                }
            }
            MergeBase base = mergeBase != null ? mergeBase
                    : stored != null || !recorded.isEmpty() ? MergeBase.DEQUANTIZED : MergeBase.ORIGINAL;
            if (stored != null && base == MergeBase.ORIGINAL) {
                throw new ModelException(baseDir + ": merge_base original needs full-precision weights, but this checkpoint"
                        + " stores its projections in " + stored.describe() + "; use merge_base dequantized");
            }
            BaseFormat format = null;
            if (base == MergeBase.DEQUANTIZED && stored == null) {
                if (recorded.size() > 1) {
                    throw new ModelException("the adapters were trained over different base formats ("
                            + recorded.stream().map(BaseFormat::describe).toList()
                            + "); merge them in separate exports, or use merge_base original");
                }
                format = recorded.isEmpty() ? fallbackQuantization : recorded.iterator().next();
            }
            if (start != null && start.init() instanceof LoftqInit && base == MergeBase.ORIGINAL && format == null
                    && !recorded.isEmpty()) {
                throw new ModelException(adapterDirs.get(0) + ": LoftQ's base is the quantized residual itself;"
                        + " merge_base original has no full-precision counterpart of it, use merge_base dequantized");
            }
            return new MergedExport(this, config, projections, stored, base, format, List.copyOf(lines), start);
        }

        /**
         * A stored format that keeps biases the config does not declare (CVXQ's bias correction on a family whose
         * config.json cannot give that projection a bias) cannot be exported to a format that does not: transformers
         * would drop the bias, so the export would not be the model. Refused by name.
         */
        private void refuseUndeclaredBiases(DecoderConfig config, SafetensorsReader reader, BaseFormat stored)
                throws ModelException {
            if (stored == null || !stored.keepsBiases()) {
                return;
            }
            for (int l = 0; l < config.numHiddenLayers(); l++) {
                for (String name : config.linearNames()) {
                    String bias = "model.layers." + l + "." + name + ".bias";
                    if (reader.contains(bias) && !config.biases().contains(name)) {
                        throw new ModelException(reader.info(bias).file() + ": tensor " + bias + " is a bias "
                                + stored.describe() + " keeps, but a " + config.modelType() + " config.json cannot give "
                                + name + " a bias, so this export would drop it; quantize with"
                                + " cvxq_bias_correction=declarable for a model whose export keeps every bias, or keep"
                                + " the packed model");
                    }
                }
            }
        }
    }
}
