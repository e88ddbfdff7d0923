package io.qlora4j.model.gemma2;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.CommonKeys;
import io.qlora4j.model.decoder.ConfigFields;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.DecoderParts;
import io.qlora4j.model.decoder.MlpActivation;
import io.qlora4j.model.decoder.ModelFamily;
import io.qlora4j.model.gemma.GemmaFamily;
import io.qlora4j.model.llama.LlamaFamily;

/**
 * {@code model_type: gemma2} as transformers' {@code Gemma2Config} and {@code modular_gemma2} define it: Gemma's
 * norms and scaled embeddings, plus a norm on the attention output ({@code post_attention_layernorm}) and around the
 * MLP ({@code pre_feedforward_layernorm}, {@code post_feedforward_layernorm}); scores scaled by
 * {@code query_pre_attn_scalar^-0.5} (default 256) and soft-capped by {@code attn_logit_softcapping} (default 50)
 * before the mask, logits by {@code final_logit_softcapping} (default 30; null turns either off); the MLP's
 * activation is {@code hidden_activation} (default {@code gelu_pytorch_tanh}); {@code sliding_window} (default 4096)
 * on layers 0, 2, 4, ... unless {@code layer_types} says otherwise; defaults 4 key/value heads, {@code head_dim} 256,
 * tied.
 */
public final class Gemma2Family implements ModelFamily {
    /** The family. */
    public static final Gemma2Family INSTANCE = new Gemma2Family();

    private static final CommonKeys.Defaults DEFAULTS = CommonKeys.Defaults.of(8192, 1e-6, 10000.0, true)
            .withKeyValueHeads(4).withHeadDim(256);
    private static final double QUERY_PRE_ATTN_SCALAR = 256;
    private static final double ATTN_SOFTCAP = 50;
    private static final double FINAL_SOFTCAP = 30;
    private static final int DEFAULT_WINDOW = 4096;

    private Gemma2Family() {}

    /** Gemma 2's parts with the given activation, scalar and soft-caps (null: none). */
    public static DecoderParts parts(MlpActivation activation, double queryPreAttnScalar, Double attnSoftcap,
            Double finalSoftcap) {
        return GemmaFamily.parts(activation).optSandwichNorms(true).optQueryPreAttnScalar(queryPreAttnScalar)
                .optAttnLogitSoftcapping(attnSoftcap).optFinalLogitSoftcapping(finalSoftcap).build();
    }

    /**
     * A Gemma 2 config in code (tests, benchmarks): the class defaults' scalar and soft-caps, tanh GELU, tied, no
     * window unless one is set.
     */
    public static DecoderConfig.Builder builder(int hiddenSize, int intermediateSize, int layers, int heads,
            int vocabSize) {
        return DecoderConfig.builder(INSTANCE, hiddenSize, intermediateSize, layers, heads, vocabSize)
                .optParts(parts(MlpActivation.GELU_TANH, QUERY_PRE_ATTN_SCALAR, ATTN_SOFTCAP, FINAL_SOFTCAP))
                .optTieWordEmbeddings(true);
    }

    @Override
    public String modelType() {
        return "gemma2";
    }

    @Override
    public DecoderConfig read(ConfigFields f) throws ModelException {
        GemmaFamily.refuseBidirectional(f);
        int hidden = f.requiredInt("hidden_size");
        int heads = f.requiredInt("num_attention_heads");
        if (heads > 0 && hidden % heads != 0) {
            throw f.invalid("hidden_size " + hidden + " is not a multiple of num_attention_heads " + heads);
        }
        DecoderConfig.Builder b = CommonKeys.read(this, f, DEFAULTS);
        b.optParts(parts(CommonKeys.activation(f, "hidden_activation", "gelu_pytorch_tanh"),
                f.optDouble("query_pre_attn_scalar", QUERY_PRE_ATTN_SCALAR),
                f.optNullableDouble("attn_logit_softcapping", ATTN_SOFTCAP),
                f.optNullableDouble("final_logit_softcapping", FINAL_SOFTCAP)));
        b.optBiases(LlamaFamily.biases(f.optBoolean("attention_bias", false), false));
        b.optSlidingWindow(f.contains("sliding_window") ? f.optInteger("sliding_window") : (Integer) DEFAULT_WINDOW);
        b.optSlidingLayers(CommonKeys.slidingLayers(f, f.requiredInt("num_hidden_layers"), i -> (i + 1) % 2 != 0));
        return CommonKeys.build(f, b);
    }

    /** {@code attention_bias} gives q/k/v/o a bias; the MLP has none in transformers. */
    @Override
    public String biasKey(String name) {
        return LlamaFamily.attentionBiasKey(name);
    }

    @Override
    public ObjectNode toJson(DecoderConfig c) {
        ObjectNode o = CommonKeys.json(c, "Gemma2ForCausalLM");
        DecoderParts p = c.parts();
        o.put("hidden_activation", p.activation().configName());
        o.put("attention_bias", !c.biases().isEmpty());
        o.put("query_pre_attn_scalar", p.queryPreAttnScalar());
        putNullable(o, "attn_logit_softcapping", p.attnLogitSoftcapping());
        putNullable(o, "final_logit_softcapping", p.finalLogitSoftcapping());
        CommonKeys.writeWindows(c, o);
        return o;
    }

    private static void putNullable(ObjectNode o, String key, Double value) {
        if (value == null) {
            o.putNull(key);
        } else {
            o.put(key, value);
        }
    }
}
