package io.qlora4j.model.qwen3;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.CommonKeys;
import io.qlora4j.model.decoder.ConfigFields;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.DecoderParts;
import io.qlora4j.model.decoder.ModelFamily;
import io.qlora4j.model.llama.LlamaFamily;
import io.qlora4j.model.qwen2.Qwen2Family;

/**
 * {@code model_type: qwen3} as transformers' {@code Qwen3Config} and {@code modular_qwen3} define it: queries and
 * keys pass a per-head RMSNorm ({@code self_attn.q_norm}, {@code k_norm}, {@code [head_dim]}, Llama's flavour) before
 * RoPE; an explicit {@code head_dim} (default 128); {@code attention_bias} on q, k, v and o (default none); Qwen's
 * sliding-window rules; defaults 32 key/value heads, {@code max_position_embeddings} 32768, untied.
 */
public final class Qwen3Family implements ModelFamily {
    /** The family. */
    public static final Qwen3Family INSTANCE = new Qwen3Family();

    private static final CommonKeys.Defaults DEFAULTS = CommonKeys.Defaults.of(32768, 1e-6, 10000.0, false)
            .withKeyValueHeads(32).withHeadDim(128);
    private static final DecoderParts PARTS = DecoderParts.builder().optQkNorm(true).build();

    private Qwen3Family() {}

    /** A Qwen3 config in code (tests, benchmarks): q/k norms, no bias, head_dim hidden / heads unless set. */
    public static DecoderConfig.Builder builder(int hiddenSize, int intermediateSize, int layers, int heads,
            int vocabSize) {
        return DecoderConfig.builder(INSTANCE, hiddenSize, intermediateSize, layers, heads, vocabSize).optParts(PARTS);
    }

    @Override
    public String modelType() {
        return "qwen3";
    }

    @Override
    public DecoderConfig read(ConfigFields f) throws ModelException {
        DecoderConfig.Builder b = CommonKeys.read(this, f, DEFAULTS);
        b.optParts(DecoderParts.builder().optQkNorm(true)
                .optActivation(CommonKeys.activation(f, "hidden_act", "silu")).build());
        b.optBiases(LlamaFamily.biases(f.optBoolean("attention_bias", false), false));
        Qwen2Family.readWindows(f, b);
        return CommonKeys.build(f, b);
    }

    /** {@code attention_bias} gives q/k/v/o a bias; the MLP has none in transformers. */
    @Override
    public String biasKey(String name) {
        return LlamaFamily.attentionBiasKey(name);
    }

    @Override
    public ObjectNode toJson(DecoderConfig c) {
        ObjectNode o = CommonKeys.json(c, "Qwen3ForCausalLM");
        o.put("attention_bias", !c.biases().isEmpty());
        Qwen2Family.writeWindows(c, o);
        return o;
    }
}
