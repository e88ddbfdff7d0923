package io.qlora4j.model.decoder;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;

/**
 * A model family (Llama, Mistral, Qwen2, ...): what turns a Hugging Face {@code config.json} of one
 * {@code model_type} into a {@link DecoderConfig}, with the family's own transformers defaults, projection names,
 * biases, norms, activation and attention options, and writes such a config back. The generic decoder, loader,
 * adapters and trainer work from the resulting config alone. Families are registered by {@code model_type} in
 * {@code io.qlora4j.model.family.ModelFamilies}; an implementation is a stateless singleton.
 */
public interface ModelFamily {
    /** The {@code model_type} of config.json this family reads ({@code llama}, {@code qwen2}, ...). */
    String modelType();

    /**
     * Reads a config.json of this family; every absent key takes the transformers config class's default, and a
     * value qlora4j does not implement is refused by name.
     *
     * @throws ModelException one line naming the file and the key at fault
     */
    DecoderConfig read(ConfigFields config) throws ModelException;

    /**
     * The config.json key that gives projection {@code name} a bias in this family ({@code attention_bias}, ...), or
     * null when no key can (the family's biases are fixed): what a refusal of a stray bias tensor names.
     */
    default String biasKey(String name) {
        return null;
    }

    /** {@code config} as config.json content, as transformers writes it for this family. */
    ObjectNode toJson(DecoderConfig config);
}
