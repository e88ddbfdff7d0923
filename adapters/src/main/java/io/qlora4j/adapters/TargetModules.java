package io.qlora4j.adapters;

import io.qlora4j.model.llama.LlamaBlock;
import io.qlora4j.model.llama.LlamaConfig;
import io.qlora4j.model.llama.LlamaLoader;
import java.util.Collection;
import java.util.HashSet;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * Names of the linear layers LoRA can wrap: LLaMA-Factory's {@code lora_target} values ({@code all}, or short
 * names such as {@code q_proj}) resolved to {@link LlamaBlock#LINEAR_NAMES}, and the module paths
 * ({@code model.layers.3.self_attn.q_proj}) that PEFT files and configs use.
 */
final class TargetModules {
    /** Every linear layer of every block; lm_head is never a target. */
    static final String ALL = "all";

    private TargetModules() {}

    /**
     * The block linear names ({@code self_attn.q_proj}, ...) that {@code targets} selects, in block order.
     *
     * @throws IllegalArgumentException for an empty list or an unknown name, listing the valid ones
     */
    static List<String> linearNames(List<String> targets) {
        if (targets.isEmpty()) {
            throw new IllegalArgumentException("lora_target is empty (valid: " + valid() + ")");
        }
        if (targets.contains(ALL)) {
            return LlamaBlock.LINEAR_NAMES;
        }
        Set<String> chosen = new LinkedHashSet<>();
        for (String target : targets) {
            chosen.add(LlamaBlock.LINEAR_NAMES.stream()
                    .filter(name -> name.equals(target) || shortName(name).equals(target))
                    .findFirst()
                    .orElseThrow(() -> new IllegalArgumentException("lora_target '" + target + "' is not a linear layer"
                            + " of a Llama block (valid: " + valid() + "; lm_head and embed_tokens are never targets)")));
        }
        return LlamaBlock.LINEAR_NAMES.stream().filter(chosen::contains).toList();
    }

    /** {@code q_proj} for {@code self_attn.q_proj}: the name PEFT's {@code target_modules} uses. */
    static String shortName(String linearName) {
        return linearName.substring(linearName.lastIndexOf('.') + 1);
    }

    /** The short names of the block linear layers that {@code modulePaths} contains, in block order. */
    static List<String> shortNamesIn(Collection<String> modulePaths) {
        Set<String> present = new HashSet<>();
        modulePaths.forEach(path -> present.add(shortName(path)));
        return LlamaBlock.LINEAR_NAMES.stream().map(TargetModules::shortName).filter(present::contains).toList();
    }

    /** Every block projection of a model of this config by module path, in block order, with its {@code {in, out}}. */
    static Map<String, long[]> projections(LlamaConfig config) {
        Map<String, long[]> shapes = LlamaLoader.expectedShapes(config);
        Map<String, long[]> projections = new LinkedHashMap<>();
        for (int layer = 0; layer < config.numHiddenLayers(); layer++) {
            for (String name : LlamaBlock.LINEAR_NAMES) {
                long[] outIn = shapes.get(modulePath(layer, name) + ".weight");
                projections.put(modulePath(layer, name), new long[] {outIn[1], outIn[0]});
            }
        }
        return projections;
    }

    /** The module path of a block's linear layer, as in the Hugging Face checkpoint without {@code .weight}. */
    static String modulePath(int layer, String linearName) {
        return "model.layers." + layer + "." + linearName;
    }

    /** The accepted {@code lora_target} names, for messages. */
    static String valid() {
        return ALL + ", " + shortNames();
    }

    /** The short names of a block's linear layers, in block order, for messages. */
    static String shortNames() {
        return String.join(", ", LlamaBlock.LINEAR_NAMES.stream().map(TargetModules::shortName).toList());
    }
}
