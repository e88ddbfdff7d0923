package io.qlora4j.adapters;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
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
import java.util.stream.Stream;

/**
 * A PEFT LoRA adapter directory opened against the projection shapes of a base model, without building the
 * model: the config, every tensor name, dtype and shape are checked when it is opened, and the matrices are
 * then read one module at a time, widened to float32, so a merge can stream through the base tensor by tensor.
 */
final class PeftAdapterFile implements AutoCloseable {
    /** The suffix of the down projection's key. */
    static final String A = "lora_A.weight";
    /** The suffix of the up projection's key. */
    static final String B = "lora_B.weight";
    /**
     * A saved PEFT key: optional {@code base_model.model.}, the module path, {@code lora_A}/{@code lora_B} (or a
     * registered variant's tensor, such as DoRA's {@code lora_magnitude_vector}), optional adapter name, and
     * {@code .weight} (which PEFT leaves off the magnitude when it saves and has in memory).
     */
    private static final Pattern KEY = Pattern.compile("(?:" + Pattern.quote(LoraAdapters.KEY_PREFIX) + ")?(.+)\\.("
            + String.join("|", Stream.concat(Stream.of("lora_A", "lora_B"), AdapterVariants.all().stream()
                    .flatMap(v -> v.extraNames().stream()).map(Pattern::quote)).toList())
            + ")(?:\\.default)?(\\.weight)?");
    private static final Set<DType> FLOATS = EnumSet.of(DType.F16, DType.BF16, DType.F32, DType.F64);

    /**
     * One adapted module: its {@code A [r, in]} and {@code B [out, r]} tensors, the variant's extra tensors by PEFT
     * suffix, and its own settings.
     */
    record Module(TensorInfo a, TensorInfo b, Map<String, TensorInfo> extras, LoraSettings settings) {}

    private final Path dir;
    private final AdapterConfig config;
    private final BaseFormat trainedOn;
    private final SafetensorsReader reader;
    private final Map<String, Module> modules;
    private final Map<String, long[]> projections;

    private PeftAdapterFile(Path dir, AdapterConfig config, BaseFormat trainedOn, SafetensorsReader reader,
            Map<String, Module> modules, Map<String, long[]> projections) {
        this.projections = projections;
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
            Map<String, Map<String, TensorInfo>> byModule = tensorsByModule(weights, reader, config, projections, layers);
            Map<String, Module> modules = new LinkedHashMap<>();
            for (Map.Entry<String, long[]> p : projections.entrySet()) {
                String path = p.getKey();
                Map<String, TensorInfo> tensors = byModule.get(path);
                if (tensors != null) {
                    checkShapes(weights, path, p.getValue(), config.rankOf(path), config.variant(), tensors);
                    Map<String, TensorInfo> extras = new LinkedHashMap<>(tensors);
                    extras.remove(A);
                    extras.remove(B);
                    modules.put(path, new Module(tensors.get(A), tensors.get(B), extras, new LoraSettings(
                            config.rankOf(path), config.alphaOf(path), config.dropout(), config.useRslora(),
                            List.of(TargetModules.shortName(path)), config.variant(), config.init())));
                }
            }
            return new PeftAdapterFile(dir, config, trainedOn, reader, modules, projections);
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

    /**
     * The modules the config's {@code target_modules} selects that the file holds no tensors for, sorted; none when
     * the config names no targets (PEFT saves them resolved, so such a config was written by hand). PEFT loads such
     * a file with a warning of missing keys and those modules fresh (B = 0: the base's output, as here without them).
     */
    List<String> absentModules() {
        return !config.namesTargets() ? List.of() : projections.keySet().stream()
                .filter(p -> config.selects(p) && !modules.containsKey(p)).sorted().toList();
    }

    /**
     * The adapter-wide settings: the config's r, alpha, dropout, scaling rule and variant, targets the adapted layer
     * names.
     */
    LoraSettings settings() {
        List<String> names = TargetModules.shortNamesIn(projections.keySet(), modules.keySet());
        return new LoraSettings(config.r(), config.alpha(), config.dropout(), config.useRslora(), names,
                config.variant(), config.init());
    }

    /** One line for a model card: the directory, rank, alpha, variant, modules, and the base format it records. */
    String describe() {
        LoraSettings s = settings();
        return "`" + dir + "`: r " + s.rank() + ", alpha " + s.alpha() + (s.useRslora() ? " (rsLoRA)" : "")
                + (s.variant() == AdapterVariants.lora() ? "" : ", " + s.variant()) + ", "
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

    /**
     * Groups the file's tensors by module path and PEFT suffix ({@code lora_A.weight}, {@code lora_B.weight}, the
     * variant's), refusing every tensor that is not one of them and every module that lacks one.
     */
    private static Map<String, Map<String, TensorInfo>> tensorsByModule(Path file, SafetensorsReader reader,
            AdapterConfig config, Map<String, long[]> projections, int layers) throws ModelException {
        Map<String, Map<String, TensorInfo>> byModule = new HashMap<>();
        List<String> expected = new ArrayList<>(List.of(A, B));
        expected.addAll(config.variant().extraNames());
        for (TensorInfo t : reader.tensors()) {
            Matcher m = KEY.matcher(t.name());
            boolean matrix = m.matches() && (m.group(2).equals("lora_A") || m.group(2).equals("lora_B"));
            if (!m.matches() || (matrix && m.group(3) == null)) {
                throw new ModelException(file + ": tensor '" + t.name() + "' is not a LoRA tensor (<module>.lora_A.weight,"
                        + " .lora_B.weight or a variant's, such as DoRA's .lora_magnitude_vector); LoRA biases, embedding"
                        + " adapters and modules_to_save are not supported");
            }
            String path = m.group(1);
            String suffix = matrix ? m.group(2) + ".weight" : m.group(2);
            if (!expected.contains(suffix)) {
                throw new ModelException(file + ": tensor '" + t.name() + "' belongs to "
                        + AdapterVariants.all().stream().filter(v -> v.extraNames().contains(suffix)).findFirst()
                                .map(v -> v.name() + ", but " + v.peftFlag() + " is not true in the config")
                                .orElse("another variant"));
            }
            if (!projections.containsKey(path)) {
                throw new ModelException(file + ": tensor '" + t.name() + "' is for module '" + path + "', which this"
                        + " model lacks (" + layers + " layers of " + TargetModules.shortNames(projections.keySet())
                        + "; LoRA on lm_head and embed_tokens is not supported)");
            }
            if (!config.selects(path)) {
                throw new ModelException(file + ": tensor '" + t.name() + "' is for module '" + path
                        + "', which the config's target_modules does not select");
            }
            if (!FLOATS.contains(t.dtype())) {
                throw new ModelException(file + ": tensor '" + t.name() + "' is " + t.dtype() + "; adapter tensors must be"
                        + " F32, F16, BF16 or F64");
            }
            TensorInfo earlier = byModule.computeIfAbsent(path, k -> new LinkedHashMap<>()).putIfAbsent(suffix, t);
            if (earlier != null) {
                throw new ModelException(file + ": tensors '" + earlier.name() + "' and '" + t.name()
                        + "' are both " + shortName(suffix) + " of module '" + path + "'");
            }
        }
        if (byModule.isEmpty()) {
            throw new ModelException(file + ": holds no LoRA matrices");
        }
        for (Map.Entry<String, Map<String, TensorInfo>> e : byModule.entrySet()) {
            for (String suffix : expected) {
                if (!e.getValue().containsKey(suffix)) {
                    throw new ModelException(file + ": module '" + e.getKey() + "' has " + String.join(", ",
                            e.getValue().keySet().stream().map(PeftAdapterFile::shortName).toList()) + " but no "
                            + shortName(suffix) + (config.variant().extraNames().contains(suffix)
                                    ? " (" + config.variant().peftFlag() + " is true)" : ""));
                }
            }
        }
        return byModule;
    }

    /** {@code lora_A} for {@code lora_A.weight}: a suffix as messages name it. */
    private static String shortName(String suffix) {
        return suffix.endsWith(".weight") ? suffix.substring(0, suffix.length() - ".weight".length()) : suffix;
    }

    /**
     * Checks {@code A [rank, in]}, {@code B [out, rank]} and the variant's tensors against the base projection,
     * naming the tensor when one does not fit.
     */
    private static void checkShapes(Path file, String path, long[] inOut, int rank, AdapterVariant variant,
            Map<String, TensorInfo> tensors) throws ModelException {
        Map<String, long[]> expected = new LinkedHashMap<>();
        expected.put(A, new long[] {rank, inOut[0]});
        expected.put(B, new long[] {inOut[1], rank});
        variant.extraNames().forEach(n -> expected.put(n, variant.extraShape(n, inOut[0], inOut[1])));
        for (Map.Entry<String, long[]> e : expected.entrySet()) {
            TensorInfo t = tensors.get(e.getKey());
            if (!Arrays.equals(t.shape(), e.getValue())) {
                throw new ModelException(file + ": tensor '" + t.name() + "' has shape "
                        + Arrays.toString(t.shape()) + " but " + path + " (in " + inOut[0] + ", out "
                        + inOut[1] + ", r " + rank + ") needs " + Arrays.toString(e.getValue()));
            }
        }
    }
}
