package io.qlora4j.adapters;

import io.qlora4j.model.decoder.DecoderConfig;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Names of the linear layers LoRA can wrap, per model family: LLaMA-Factory's {@code lora_target} values
 * ({@code all}, or short names such as {@code q_proj} or Phi-3's {@code qkv_proj}) resolved to the block's
 * projection names ({@link DecoderConfig#linearNames()}), and the module paths
 * ({@code model.layers.3.self_attn.q_proj}) that PEFT files and configs use.
 */
final class TargetModules {
    /** Every linear layer of every block, as PEFT's {@code all-linear}; lm_head is never a target. */
    static final String ALL = "all";

    private TargetModules() {}

    /**
     * Checks that every target is {@code all} or names a projection some family's block has, before any model is
     * known (a name no family has is a typo).
     *
     * @throws IllegalArgumentException for an empty list or an unknown name, listing the known ones
     */
    static void checkKnown(List<String> targets) {
        if (targets.isEmpty()) {
            throw new IllegalArgumentException("lora_target is empty (valid: " + valid(DecoderConfig.KNOWN_LINEARS) + ")");
        }
        for (String target : targets) {
            if (!target.equals(ALL) && find(DecoderConfig.KNOWN_LINEARS, target) == null) {
                throw new IllegalArgumentException("lora_target '" + target + "' is not a linear layer of a decoder block"
                        + " (valid: " + valid(DecoderConfig.KNOWN_LINEARS) + "; lm_head and embed_tokens are never"
                        + " targets)");
            }
        }
    }

    /**
     * The block projection names of {@code config} ({@code self_attn.q_proj}, ...) that {@code targets} selects,
     * in block order.
     *
     * @throws IllegalArgumentException for a name this family's block lacks, listing the valid ones
     */
    static List<String> linearNames(DecoderConfig config, List<String> targets) {
        checkKnown(targets);
        List<String> linears = config.linearNames();
        if (targets.contains(ALL)) {
            return linears;
        }
        Set<String> chosen = new HashSet<>();
        for (String target : targets) {
            String name = find(linears, target);
            if (name == null) {
                throw new IllegalArgumentException("lora_target '" + target + "' is not a linear layer of a "
                        + config.modelType() + " block (valid: " + valid(linears) + ")");
            }
            chosen.add(name);
        }
        return linears.stream().filter(chosen::contains).toList();
    }

    /** The name among {@code linears} that {@code target} names, in full or short form; null when none. */
    private static String find(List<String> linears, String target) {
        return linears.stream().filter(name -> name.equals(target) || shortName(name).equals(target))
                .findFirst().orElse(null);
    }

    /** {@code q_proj} for {@code self_attn.q_proj}: the name PEFT's {@code target_modules} uses. */
    static String shortName(String linearName) {
        return linearName.substring(linearName.lastIndexOf('.') + 1);
    }

    /**
     * The short names of the projections at {@code chosenPaths}, in the order they first appear in
     * {@code modelPaths} (a model's module paths in block order).
     */
    static List<String> shortNamesIn(Collection<String> modelPaths, Collection<String> chosenPaths) {
        Set<String> present = new HashSet<>();
        chosenPaths.forEach(path -> present.add(shortName(path)));
        Set<String> ordered = new LinkedHashSet<>();
        modelPaths.stream().map(TargetModules::shortName).filter(present::contains).forEach(ordered::add);
        return List.copyOf(ordered);
    }

    /** Every block projection of a model of this config by module path, in block order, with its {@code {in, out}}. */
    static Map<String, long[]> projections(DecoderConfig config) {
        Map<String, long[]> projections = new LinkedHashMap<>();
        for (int layer = 0; layer < config.numHiddenLayers(); layer++) {
            for (String name : config.linearNames()) {
                projections.put(modulePath(layer, name), config.inOut(name));
            }
        }
        return projections;
    }

    /** The module path of a block's linear layer, as in the Hugging Face checkpoint without {@code .weight}. */
    static String modulePath(int layer, String linearName) {
        return "model.layers." + layer + "." + linearName;
    }

    /** The accepted {@code lora_target} names for blocks with {@code linears}, for messages. */
    private static String valid(List<String> linears) {
        return ALL + ", " + shortNames(linears);
    }

    /** The distinct short names of {@code namesOrPaths}, in order, comma-separated, for messages. */
    static String shortNames(Collection<String> namesOrPaths) {
        return String.join(", ", new LinkedHashSet<>(namesOrPaths.stream().map(TargetModules::shortName).toList()));
    }
}
