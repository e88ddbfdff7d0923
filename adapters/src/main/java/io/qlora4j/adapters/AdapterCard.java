package io.qlora4j.adapters;

import io.qlora4j.model.format.BaseFormat;
import java.util.stream.Collectors;

/**
 * The {@code README.md} model card of an adapter directory, where PEFT and the Hub keep facts about an adapter:
 * Hugging Face's front matter ({@code base_model}, {@code library_name: peft}), then the base format the adapter was
 * trained over and its LoRA settings.
 *
 * @param baseModel {@code base_model_name_or_path}
 * @param baseFormat the format of the base's linear weights during training
 * @param settings the adapter-wide LoRA settings
 */
record AdapterCard(String baseModel, BaseFormat baseFormat, LoraSettings settings) {

    /**
     * The card's text. Its title names the adapter by what it is, not by its directory, which is a hidden staging
     * directory while a run writes it and may be renamed after.
     */
    String text() {
        String keys = baseFormat.keys().entrySet().stream().map(e -> e.getKey() + ": " + e.getValue())
                .collect(Collectors.joining(", "));
        return "---\nbase_model: " + baseModel + "\nlibrary_name: peft\ntags:\n- qlora4j\n- lora\n---\n\n"
                + "# " + settings.variant() + " adapter for " + baseModel + "\n\n"
                + "A LoRA adapter for `" + baseModel + "`, trained by qlora4j.\n\n"
                + "- Base format during training: " + baseFormat.describe()
                + (keys.isEmpty() ? "" : " (" + keys + ")") + "; recorded in `" + BaseFormatRecord.FILE + "`\n"
                + "- " + settings.variant() + ": r " + settings.rank() + ", alpha " + settings.alpha()
                + (settings.useRslora() ? " (rsLoRA)" : "") + ", dropout " + settings.dropout() + ", modules "
                + String.join(", ", settings.targets()) + "\n"
                + "- Start: " + settings.init().describe() + (settings.init().rewritesBase() ? "; the base it trained"
                        + " over is rebuilt from the original weights when the adapter is loaded" : "") + "\n"
                + "- Loads in PEFT (`PeftModel.from_pretrained`); `qlora4j export` merges it into the weights it was"
                + " trained against (merge_base dequantized) or the original ones.\n";
    }
}
