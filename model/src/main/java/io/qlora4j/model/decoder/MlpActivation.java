package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.nn.Activation;
import io.qlora4j.model.GraphScalars;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import java.util.stream.Collectors;

/** The gate activation of a gated MLP, by its transformers {@code ACT2FN} names; each keeps the graph. */
public enum MlpActivation {
    /** {@code x * sigmoid(x)} ({@code silu}, {@code swish}). */
    SILU("silu", "swish") {
        @Override
        public NDArray apply(NDArray x) {
            return x.mul(Activation.sigmoid(x));
        }
    },
    /** Exact GELU, {@code x/2 * (1 + erf(x / sqrt 2))} ({@code gelu}). */
    GELU("gelu") {
        @Override
        public NDArray apply(NDArray x) {
            NDArray erf = GraphScalars.times(x, 1 / Math.sqrt(2)).erf();
            return GraphScalars.times(x, 0.5).mul(erf.add(GraphScalars.of(erf, 1)));
        }
    },
    /**
     * GELU's tanh approximation, {@code x/2 * (1 + tanh(sqrt(2/pi) * (x + 0.044715 x^3)))}
     * ({@code gelu_pytorch_tanh}, and {@code gelu_new}, the same formula).
     */
    GELU_TANH("gelu_pytorch_tanh", "gelu_new") {
        @Override
        public NDArray apply(NDArray x) {
            NDArray inner = x.add(GraphScalars.times(x.mul(x).mul(x), 0.044715));
            NDArray tanh = GraphScalars.times(inner, Math.sqrt(2 / Math.PI)).tanh();
            return GraphScalars.times(x, 0.5).mul(tanh.add(GraphScalars.of(tanh, 1)));
        }
    };

    private final List<String> configNames;

    MlpActivation(String... configNames) {
        this.configNames = List.of(configNames);
    }

    /** The name config.json uses ({@code hidden_act}) for this activation (its first name). */
    public String configName() {
        return configNames.get(0);
    }

    /** The activation called {@code name} in config.json, or null when qlora4j has none of that name. */
    public static MlpActivation fromConfigName(String name) {
        return Arrays.stream(values()).filter(a -> a.configNames.contains(name)).findFirst().orElse(null);
    }

    /** The supported names, for messages. */
    public static String supported() {
        return Arrays.stream(values()).flatMap(a -> a.configNames.stream()).collect(Collectors.joining(", "));
    }

    /** Applies the activation to {@code x}, keeping the graph; the result has x's dtype. */
    public abstract NDArray apply(NDArray x);

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
