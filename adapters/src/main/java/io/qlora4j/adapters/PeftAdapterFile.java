package io.qlora4j.adapters;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Collections;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * A PEFT LoRA adapter directory opened against the projection shapes of a base model, without building the
 * model: the config, every tensor name, dtype and shape are checked when it is opened, and the matrices are
 * then read one module at a time, widened to float32, so a merge can stream through the base tensor by tensor.
 */
final class PeftAdapterFile implements AutoCloseable {
    /** A saved PEFT key: optional {@code base_model.model.}, the module path, lora_A/B, optional adapter name. */
    private static final Pattern KEY =
            Pattern.compile("(?:" + Pattern.quote(LoraAdapters.KEY_PREFIX) + ")?(.+)\\.lora_([AB])(?:\\.default)?\\.weight");
    private static final Set<DType> FLOATS = EnumSet.of(DType.F16, DType.BF16, DType.F32, DType.F64);

    /** One adapted module: its {@code A [r, in]} and {@code B [out, r]} tensors and its own settings. */
    record Module(TensorInfo a, TensorInfo b, LoraSettings settings) {}

    private final Path dir;
    private final AdapterConfig config;
    private final BaseFormat trainedOn;
    private final SafetensorsReader reader;
    private final Map<String, Module> modules;

    private PeftAdapterFile(Path dir, AdapterConfig config, BaseFormat trainedOn, SafetensorsReader reader,
            Map<String, Module> modules) {
        this.dir = dir;
        this.config = config;
        this.trainedOn = trainedOn;
        this.reader = reader;
        this.modules = Collections.unmodifiableMap(modules);
    }

    /**
     * Opens and checks {@code dir} against the LoRA-capable projections of a base model of {@code layers} blocks:
     * {@code projections} maps each module path ({@code model.layers.0.self_attn.q_proj}), in block order, to
     * its {@code {in, out}} features. Every problem is one line naming the file and the key or tensor.
     */
    static PeftAdapterFile open(Path dir, Map<String, long[]> projections, int layers) throws ModelException {
        Path configFile = dir.resolve(AdapterConfig.FILE);
        if (!Files.isRegularFile(configFile)) {
            throw new ModelException(dir + ": no " + AdapterConfig.FILE + " (not a PEFT adapter directory)");
        }
        Path weights = dir.resolve(LoraAdapters.WEIGHTS_FILE);
        if (!Files.isRegularFile(weights)) {
            throw new ModelException(dir + (Files.isRegularFile(dir.resolve("adapter_model.bin"))
                    ? ": adapter_model.bin (a Python pickle) is not supported; save the adapter with"
                            + " safe_serialization=True to get " + LoraAdapters.WEIGHTS_FILE
                    : ": no " + LoraAdapters.WEIGHTS_FILE));
        }
        AdapterConfig config = AdapterConfig.read(configFile);
        config.checkTargets(configFile, projections.keySet());
        BaseFormat trainedOn = BaseFormatRecord.read(dir);
        SafetensorsReader reader = SafetensorsReader.open(weights);
        try {
            Map<String, TensorInfo[]> byModule = matricesByModule(weights, reader, config, projections, layers);
            Map<String, Module> modules = new LinkedHashMap<>();
            for (Map.Entry<String, long[]> p : projections.entrySet()) {
                String path = p.getKey();
                TensorInfo[] ab = byModule.get(path);
                if (ab != null) {
                    checkShapes(weights, path, p.getValue(), config.rankOf(path), ab);
                    modules.put(path, new Module(ab[0], ab[1], new LoraSettings(config.rankOf(path),
                            config.alphaOf(path), config.dropout(), config.useRslora(),
                            List.of(TargetModules.shortName(path)))));
                }
            }
            return new PeftAdapterFile(dir, config, trainedOn, reader, modules);
        } catch (ModelException | RuntimeException e) {
            reader.close();
            throw e;
        }
    }

    /** The adapter directory. */
    Path dir() {
        return dir;
    }

    /** The checked {@code adapter_config.json}. */
    AdapterConfig config() {
        return config;
    }

    /** The base format the adapter records it was trained over ({@code qlora4j.json}), or null when it records none. */
    BaseFormat trainedOn() {
        return trainedOn;
    }

    /** The adapted modules by path, in block order. */
    Map<String, Module> modules() {
        return modules;
    }

    /** The adapter-wide settings: the config's r, alpha, dropout and scaling rule, targets the adapted layer names. */
    LoraSettings settings() {
        List<String> names = TargetModules.shortNamesIn(modules.keySet());
        return new LoraSettings(config.r(), config.alpha(), config.dropout(), config.useRslora(), names);
    }

    /** One line for a model card: the directory, rank, alpha, modules, and the base format it records. */
    String describe() {
        LoraSettings s = settings();
        return "`" + dir + "`: r " + s.rank() + ", alpha " + s.alpha() + (s.useRslora() ? " (rsLoRA)" : "") + ", "
                + modules.size() + " modules (" + String.join(", ", s.targets()) + ")"
                + (trainedOn == null ? "" : ", trained over a " + trainedOn.describe() + " base");
    }

    /** A matrix of this adapter as float32, row-major. */
    float[] floats(TensorInfo t) throws ModelException {
        return reader.floats(t.name());
    }

    /** Closes the weights file. */
    @Override
    public void close() {
        reader.close();
    }

    /** Groups the file's tensors as {A, B} per module path, refusing every tensor that is not one of them. */
    private static Map<String, TensorInfo[]> matricesByModule(Path file, SafetensorsReader reader, AdapterConfig config,
            Map<String, long[]> projections, int layers) throws ModelException {
        Map<String, TensorInfo[]> byModule = new HashMap<>();
        for (TensorInfo t : reader.tensors()) {
            Matcher m = KEY.matcher(t.name());
            if (!m.matches()) {
                throw new ModelException(file + ": tensor '" + t.name() + "' is not a LoRA matrix (<module>.lora_A.weight"
                        + " or .lora_B.weight); DoRA magnitudes, LoRA biases, embedding adapters and modules_to_save are"
                        + " not supported");
            }
            String path = m.group(1);
            if (!projections.containsKey(path)) {
                throw new ModelException(file + ": tensor '" + t.name() + "' is for module '" + path + "', which this"
                        + " model lacks (" + layers + " layers of " + TargetModules.shortNames()
                        + "; LoRA on lm_head and embed_tokens is not supported)");
            }
            if (!config.selects(path)) {
                throw new ModelException(file + ": tensor '" + t.name() + "' is for module '" + path
                        + "', which the config's target_modules does not select");
            }
            if (!FLOATS.contains(t.dtype())) {
                throw new ModelException(file + ": tensor '" + t.name() + "' is " + t.dtype() + "; LoRA matrices must be"
                        + " F32, F16, BF16 or F64");
            }
            TensorInfo[] ab = byModule.computeIfAbsent(path, k -> new TensorInfo[2]);
            int which = m.group(2).equals("A") ? 0 : 1;
            if (ab[which] != null) {
                throw new ModelException(file + ": tensors '" + ab[which].name() + "' and '" + t.name()
                        + "' are both lora_" + m.group(2) + " of module '" + path + "'");
            }
            ab[which] = t;
        }
        if (byModule.isEmpty()) {
            throw new ModelException(file + ": holds no LoRA matrices");
        }
        for (Map.Entry<String, TensorInfo[]> e : byModule.entrySet()) {
            if (e.getValue()[0] == null || e.getValue()[1] == null) {
                throw new ModelException(file + ": module '" + e.getKey() + "' has lora_"
                        + (e.getValue()[0] == null ? "B but no lora_A" : "A but no lora_B"));
            }
        }
        return byModule;
    }

    /** Checks {@code A [rank, in]} and {@code B [out, rank]} against the base projection, naming the tensor when not. */
    private static void checkShapes(Path file, String path, long[] inOut, int rank, TensorInfo[] ab)
            throws ModelException {
        long[][] expected = {{rank, inOut[0]}, {inOut[1], rank}};
        for (int i = 0; i < 2; i++) {
            if (!Arrays.equals(ab[i].shape(), expected[i])) {
                throw new ModelException(file + ": tensor '" + ab[i].name() + "' has shape "
                        + Arrays.toString(ab[i].shape()) + " but " + path + " (in " + inOut[0] + ", out "
                        + inOut[1] + ", r " + rank + ") needs " + Arrays.toString(expected[i]));
            }
        }
    }
}
