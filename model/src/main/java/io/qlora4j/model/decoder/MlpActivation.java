package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;
import java.util.Arrays;
import java.util.Locale;
import java.util.stream.Collectors;

/** The gate activation of a gated MLP, by its transformers {@code ACT2FN} name. */
public enum MlpActivation {
    /** {@code x * sigmoid(x)} ({@code silu}). */
    SILU("silu");

    private final String configName;

    MlpActivation(String configName) {
        this.configName = configName;
    }

    /** The name config.json uses ({@code hidden_act}). */
    public String configName() {
        return configName;
    }

    /** The activation called {@code name} in config.json, or null when qlora4j has none of that name. */
    public static MlpActivation fromConfigName(String name) {
        return Arrays.stream(values()).filter(a -> a.configName.equals(name)).findFirst().orElse(null);
    }

    /** The supported names, for messages. */
    public static String supported() {
        return Arrays.stream(values()).map(MlpActivation::configName).collect(Collectors.joining(", "));
    }

    /** Applies the activation to {@code x}, keeping the graph. */
    public NDArray apply(NDArray x) {
        return x.mul(Activation.sigmoid(x));
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
