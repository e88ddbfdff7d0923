package io.qlora4j.model.family;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.ConfigFields;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.ModelFamily;
import io.qlora4j.model.gemma.GemmaFamily;
import io.qlora4j.model.gemma2.Gemma2Family;
import io.qlora4j.model.llama.LlamaFamily;
import io.qlora4j.model.mistral.MistralFamily;
import io.qlora4j.model.phi3.Phi3Family;
import io.qlora4j.model.qwen2.Qwen2Family;
import io.qlora4j.model.qwen3.Qwen3Family;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * The registry of model families, keyed by config.json's {@code model_type}: what reads a model directory's
 * config into a {@link DecoderConfig}. A {@code model_type} qlora4j lacks is refused by name with the supported
 * ones. Adding a family is adding its {@link ModelFamily} to {@link #FAMILIES}.
 */
public final class ModelFamilies {
    private static final List<ModelFamily> FAMILIES = List.of(LlamaFamily.INSTANCE, MistralFamily.INSTANCE,
            Qwen2Family.INSTANCE, Qwen3Family.INSTANCE, GemmaFamily.INSTANCE, Gemma2Family.INSTANCE, Phi3Family.INSTANCE);
    private static final Map<String, ModelFamily> BY_TYPE = new LinkedHashMap<>();

    static {
        FAMILIES.forEach(f -> BY_TYPE.put(f.modelType(), f));
    }

    private ModelFamilies() {}

    /** The supported {@code model_type} values, in registration order. */
    public static List<String> supported() {
        return List.copyOf(BY_TYPE.keySet());
    }

    /**
     * The family of {@code modelType}.
     *
     * @throws IllegalArgumentException naming the type and the supported ones
     */
    public static ModelFamily of(String modelType) {
        ModelFamily family = BY_TYPE.get(modelType);
        if (family == null) {
            throw new IllegalArgumentException(unsupported(modelType));
        }
        return family;
    }

    /** Reads {@code configJson} with the family its {@code model_type} names. */
    public static DecoderConfig read(Path configJson) throws ModelException {
        return read(ConfigFields.read(configJson));
    }

    /** Parses config.json text with the family its {@code model_type} names; {@code source} names it in errors. */
    public static DecoderConfig parse(String json, String source) throws ModelException {
        return read(ConfigFields.parse(json, source));
    }

    private static DecoderConfig read(ConfigFields f) throws ModelException {
        f.require("model_type");
        String type = f.optString("model_type", null);
        ModelFamily family = BY_TYPE.get(type);
        if (family == null) {
            throw new ModelException(f.source() + ": " + unsupported(type));
        }
        return family.read(f);
    }

    private static String unsupported(String modelType) {
        return "model_type '" + modelType + "' is not supported (supported: " + String.join(", ", supported()) + ")";
    }
}
