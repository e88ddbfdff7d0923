package io.qlora4j.adapters;

import io.qlora4j.model.format.BaseFormat;
import java.nio.file.Path;
import java.util.List;

/**
 * The {@code README.md} of a merged export: Hugging Face's front matter, then what was merged into what and how,
 * so the checkpoint says where it came from.
 *
 * @param baseDir the base model directory
 * @param stored the format the base checkpoint stores its projections in, or null for a float checkpoint
 * @param adapterLines one description per adapter, in merge order
 * @param mergeBase the weights the adapters were added to
 * @param baseQuantization the round trip of a dequantized merge on a full-precision base, else null
 * @param dtype the torch name of the written weights' dtype
 * @param requantize the format of the written projections, or null when dense
 */
record ModelCard(Path baseDir, BaseFormat stored, List<String> adapterLines, MergeBase mergeBase,
        BaseFormat baseQuantization, String dtype, BaseFormat requantize) {

    /** The card of the export written to {@code exportDir}. */
    String text(Path exportDir) {
        StringBuilder card = new StringBuilder("---\nlibrary_name: transformers\ntags:\n- qlora4j\n- lora\n- merged\n---\n\n");
        card.append("# ").append(exportDir.toAbsolutePath().normalize().getFileName()).append("\n\n");
        card.append("The base model `").append(baseDir).append("` with ").append(adapterLines.size())
                .append(adapterLines.size() == 1 ? " LoRA adapter" : " LoRA adapters")
                .append(" merged into its weights by qlora4j.\n\n");
        card.append("- Base model: `").append(baseDir).append('`')
                .append(stored != null ? " (stored in " + stored.describe() + ")" : "").append('\n');
        card.append("- Adapters, merged in this order:\n");
        adapterLines.forEach(line -> card.append("  - ").append(line).append('\n'));
        card.append("- Merge base: ").append(mergeBase.jsonName()).append(" (").append(formula()).append(")\n");
        card.append("- Weights: ").append(requantize == null ? dtype + " safetensors"
                : requantize.describe() + " (block projections; the rest " + dtype
                        + "), with its quantization_config for transformers").append('\n');
        return card.toString();
    }

    private String formula() {
        if (mergeBase == MergeBase.ORIGINAL) {
            return "each adapter merged, as its variant merges, into W, the checkpoint's full-precision weights";
        }
        return stored != null ? "each adapter merged into dequant(Wq), the checkpoint's stored weights"
                : "each adapter merged into dequant(" + baseQuantization.describe() + " quantization of W), the weights"
                        + " the adapter was trained against";
    }
}
