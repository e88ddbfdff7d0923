package io.qlora4j.model.qwen2;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.CommonKeys;
import io.qlora4j.model.decoder.ConfigFields;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.DecoderParts;
import io.qlora4j.model.decoder.ModelFamily;
import java.util.List;
import java.util.Set;

/**
 * {@code model_type: qwen2} (Qwen2, Qwen2.5) as transformers' {@code Qwen2Config} and {@code modular_qwen2} define
 * it: Llama's block with biases on q, k and v but not on o_proj; a sliding window only when
 * {@code use_sliding_window} is true (Qwen2.5 configs carry a dormant {@code sliding_window} with it false), then on
 * the layers from {@code max_window_layers} on, unless {@code layer_types} lists them; defaults 32 key/value heads,
 * {@code max_position_embeddings} 32768, {@code rms_norm_eps} 1e-6, untied (the small checkpoints tie), RoPE theta
 * 10000 (Qwen2.5 checkpoints write 1e6).
 */
public final class Qwen2Family implements ModelFamily {
    /** The family. */
    public static final Qwen2Family INSTANCE = new Qwen2Family();
    /** The biased projections: q, k and v. */
    public static final Set<String> QKV_BIASES = Set.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj");

    private static final CommonKeys.Defaults DEFAULTS = CommonKeys.Defaults.of(32768, 1e-6, 10000.0, false)
            .withKeyValueHeads(32);
    private static final int DEFAULT_WINDOW = 4096;
    private static final int DEFAULT_MAX_WINDOW_LAYERS = 28;

    private Qwen2Family() {}

    /** A Qwen2 config in code (tests, benchmarks): q/k/v biases, no window unless one is set. */
    public static DecoderConfig.Builder builder(int hiddenSize, int intermediateSize, int layers, int heads,
            int vocabSize) {
        return DecoderConfig.builder(INSTANCE, hiddenSize, intermediateSize, layers, heads, vocabSize)
                .optBiases(QKV_BIASES);
    }

    @Override
    public String modelType() {
        return "qwen2";
    }

    @Override
    public DecoderConfig read(ConfigFields f) throws ModelException {
        DecoderConfig.Builder b = CommonKeys.read(this, f, DEFAULTS);
        b.optParts(DecoderParts.builder().optActivation(CommonKeys.activation(f, "hidden_act", "silu")).build());
        b.optBiases(QKV_BIASES);
        readWindows(f, b);
        return CommonKeys.build(f, b);
    }

    /**
     * Qwen's sliding window ({@code Qwen2Config.__post_init__}, shared by Qwen3): {@code sliding_window} (default
     * 4096) applies only when {@code use_sliding_window}, to the layers {@code layer_types} marks or, without it, to
     * layers {@code i >= max_window_layers} (default 28).
     */
    public static void readWindows(ConfigFields f, DecoderConfig.Builder b) throws ModelException {
        if (!f.optBoolean("use_sliding_window", false)) {
            return;
        }
        Integer window = f.contains("sliding_window") ? f.optInteger("sliding_window") : (Integer) DEFAULT_WINDOW;
        int from = f.optInt("max_window_layers", DEFAULT_MAX_WINDOW_LAYERS);
        b.optSlidingWindow(window);
        b.optSlidingLayers(CommonKeys.slidingLayers(f, f.requiredInt("num_hidden_layers"), i -> i >= from));
    }

    /** Writes Qwen's window keys: {@code use_sliding_window}, {@code sliding_window}, {@code max_window_layers}, {@code layer_types}. */
    public static void writeWindows(DecoderConfig c, ObjectNode o) {
        o.put("use_sliding_window", c.slidingWindow() != null);
        List<Boolean> sliding = c.slidingLayers();
        o.put("max_window_layers", sliding.contains(true) ? sliding.indexOf(true) : c.numHiddenLayers());
        CommonKeys.writeWindows(c, o);
    }

    @Override
    public ObjectNode toJson(DecoderConfig c) {
        ObjectNode o = CommonKeys.json(c, "Qwen2ForCausalLM");
        writeWindows(c, o);
        return o;
    }
}
