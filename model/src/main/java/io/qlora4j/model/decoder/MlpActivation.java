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
    SILU(2, 0, "silu", "swish") {
        @Override
        public NDArray apply(NDArray x) {
            return x.mul(Activation.sigmoid(x));
        }

        @Override
        public NDArray applyGraphFree(NDArray x) {
            return Activation.sigmoid(x).muli(x);
        }
    },
    /** Exact GELU, {@code x/2 * (1 + erf(x / sqrt 2))} ({@code gelu}). */
    GELU(4, 1, "gelu") {
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
    GELU_TANH(5, 4, "gelu_pytorch_tanh", "gelu_new") {
        @Override
        public NDArray apply(NDArray x) {
            NDArray inner = x.add(GraphScalars.times(x.mul(x).mul(x), 0.044715));
            NDArray tanh = GraphScalars.times(inner, Math.sqrt(2 / Math.PI)).tanh();
            return GraphScalars.times(x, 0.5).mul(tanh.add(GraphScalars.of(tanh, 1)));
        }
    };

    private final int savedArrays;
    private final int transientArrays;
    private final List<String> configNames;

    MlpActivation(int savedArrays, int transientArrays, String... configNames) {
        this.savedArrays = savedArrays;
        this.transientArrays = transientArrays;
        this.configNames = List.of(configNames);
    }

    /**
     * Arrays of the input's shape that {@link #apply} creates and autograd keeps for the backward pass: SiLU the
     * sigmoid and the product; GELU {@code x / sqrt 2} (erf's input), {@code 1 + erf}, {@code x / 2} and the
     * product; the tanh form {@code x^2}, the tanh, {@code 1 + tanh}, {@code x / 2} and the product. What a memory
     * plan counts per MLP.
     */
    public int savedArrays() {
        return savedArrays;
    }

    /**
     * Arrays of the input's shape that {@link #apply} creates and no backward pass needs, alive until the block's
     * forward pass returns: GELU the erf; the tanh form {@code x^3}, {@code 0.044715 x^3}, the inner sum and its
     * scaled copy.
     */
    public int transientArrays() {
        return transientArrays;
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

    /**
     * {@link #apply} where no graph is recorded, bit for bit, into fewer new arrays where the activation allows
     * ({@code x} itself is left as it was).
     */
    public NDArray applyGraphFree(NDArray x) {
        return apply(x);
    }

    @Override
    public String toString() {
        return name().toLowerCase(Locale.ROOT);
    }
}
