package io.qlora4j.adapters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.FrozenLinear;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.llama.LlamaBlock;
import io.qlora4j.model.llama.LlamaModel;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.EnumSet;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * Reads a PEFT LoRA adapter directory onto a Llama model. Everything is checked (config, tensor names, dtypes,
 * shapes against the base layers) before any array is created, so a refused adapter leaves the model as it was.
 */
final class PeftAdapterReader {
    /** A saved PEFT key: optional {@code base_model.model.}, the module path, lora_A/B, optional adapter name. */
    private static final Pattern KEY =
            Pattern.compile("(?:" + Pattern.quote(LoraAdapters.KEY_PREFIX) + ")?(.+)\\.lora_([AB])(?:\\.default)?\\.weight");
    private static final Set<DType> FLOATS = EnumSet.of(DType.F16, DType.BF16, DType.F32, DType.F64);

    private PeftAdapterReader() {}

    /** A module of the model that LoRA may wrap. */
    private record Slot(int layer, String linearName, FrozenLinear base) {}

    static LoraAdapters read(Path dir, LlamaModel model, NDManager manager) throws ModelException {
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
        Map<String, Slot> slots = new LinkedHashMap<>();
        for (int layer = 0; layer < model.numLayers(); layer++) {
            for (String name : LlamaBlock.LINEAR_NAMES) {
                slots.put(TargetModules.modulePath(layer, name), new Slot(layer, name, model.block(layer).linear(name)));
            }
        }
        config.checkTargets(configFile, slots.keySet());
        try (SafetensorsReader reader = SafetensorsReader.open(weights)) {
            Map<String, TensorInfo[]> byModule = matricesByModule(weights, reader, config, slots, model.numLayers());
            Map<String, Slot> present = new LinkedHashMap<>();
            for (Map.Entry<String, Slot> slot : slots.entrySet()) {
                TensorInfo[] ab = byModule.get(slot.getKey());
                if (ab != null) {
                    checkShapes(weights, slot.getKey(), slot.getValue().base(), config.rankOf(slot.getKey()), ab);
                    present.put(slot.getKey(), slot.getValue());
                }
            }
            List<String> linearNames = LlamaBlock.LINEAR_NAMES.stream()
                    .filter(name -> present.values().stream().anyMatch(slot -> slot.linearName().equals(name)))
                    .toList();
            linearNames.forEach(name -> LoraAdapters.requireUnwrapped(model, name));
            List<LoraAdapters.Planned> planned = new ArrayList<>();
            try {
                for (Map.Entry<String, Slot> e : present.entrySet()) {
                    String path = e.getKey();
                    Slot slot = e.getValue();
                    LoraSettings s = new LoraSettings(config.rankOf(path), config.alphaOf(path), config.dropout(),
                            config.useRslora(), List.of(TargetModules.shortName(slot.linearName())));
                    TensorInfo[] ab = byModule.get(path);
                    planned.add(new LoraAdapters.Planned(slot.layer(), slot.linearName(), s,
                            array(reader, manager, ab[0]), array(reader, manager, ab[1])));
                }
            } catch (ModelException | RuntimeException e) {
                planned.forEach(p -> {
                    p.a().close();
                    p.b().close();
                });
                throw e;
            }
            LoraSettings adapter = new LoraSettings(config.r(), config.alpha(), config.dropout(), config.useRslora(),
                    linearNames.stream().map(TargetModules::shortName).toList());
            return LoraAdapters.wrap(model, adapter, planned);
        }
    }

    /** Groups the file's tensors as {A, B} per module path, refusing every tensor that is not one of them. */
    private static Map<String, TensorInfo[]> matricesByModule(Path file, SafetensorsReader reader, AdapterConfig config,
            Map<String, Slot> slots, int layers) throws ModelException {
        Map<String, TensorInfo[]> byModule = new HashMap<>();
        for (TensorInfo t : reader.tensors()) {
            Matcher m = KEY.matcher(t.name());
            if (!m.matches()) {
                throw new ModelException(file + ": tensor '" + t.name() + "' is not a LoRA matrix (<module>.lora_A.weight"
                        + " or .lora_B.weight); DoRA magnitudes, LoRA biases, embedding adapters and modules_to_save are"
                        + " not supported");
            }
            String path = m.group(1);
            if (!slots.containsKey(path)) {
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

    /** Checks {@code A [rank, in]} and {@code B [out, rank]} against the base layer, naming the tensor when not. */
    private static void checkShapes(Path file, String path, FrozenLinear base, int rank, TensorInfo[] ab)
            throws ModelException {
        long[][] expected = {{rank, base.inFeatures()}, {base.outFeatures(), rank}};
        for (int i = 0; i < 2; i++) {
            if (!Arrays.equals(ab[i].shape(), expected[i])) {
                throw new ModelException(file + ": tensor '" + ab[i].name() + "' has shape "
                        + Arrays.toString(ab[i].shape()) + " but " + path + " (in " + base.inFeatures() + ", out "
                        + base.outFeatures() + ", r " + rank + ") needs " + Arrays.toString(expected[i]));
            }
        }
    }

    private static NDArray array(SafetensorsReader reader, NDManager manager, TensorInfo t) throws ModelException {
        return manager.create(reader.floats(t.name()), new Shape(t.shape()));
    }
}
