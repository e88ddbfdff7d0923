package io.qlora4j.model.gemma;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.CommonKeys;
import io.qlora4j.model.decoder.ConfigFields;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.DecoderParts;
import io.qlora4j.model.decoder.MlpActivation;
import io.qlora4j.model.decoder.ModelFamily;
import io.qlora4j.model.decoder.RmsNorm;
import io.qlora4j.model.llama.LlamaFamily;

/**
 * {@code model_type: gemma} as transformers' {@code GemmaConfig} and {@code modular_gemma} define it: every RMSNorm
 * is {@code x * (1 + w)} in float32, embeddings are multiplied by {@code sqrt(hidden_size)}, the MLP's activation is
 * {@code hidden_act} (default {@code gelu_pytorch_tanh}; Gemma 1.0 configs say {@code gelu}, exact GELU, which
 * current transformers runs; {@code hidden_activation}, read by 4.38 to 4.47 only, is ignored as it is now);
 * {@code attention_bias} on q/k/v/o; defaults {@code head_dim} 256, 16 key/value heads, tied,
 * {@code max_position_embeddings} 8192. {@code use_bidirectional_attention} (EmbeddingGemma) is refused.
 */
public final class GemmaFamily implements ModelFamily {
    /** The family. */
    public static final GemmaFamily INSTANCE = new GemmaFamily();

    private static final CommonKeys.Defaults DEFAULTS = CommonKeys.Defaults.of(8192, 1e-6, 10000.0, true)
            .withKeyValueHeads(16).withHeadDim(256);

    private GemmaFamily() {}

    /** Gemma's parts with the MLP activation {@code activation}. */
    public static DecoderParts.Builder parts(MlpActivation activation) {
        return DecoderParts.builder().optNorm(RmsNorm.OFFSET).optActivation(activation).optScaledEmbedding(true);
    }

    /** A Gemma config in code (tests, benchmarks): tanh GELU, tied, head_dim hidden / heads unless set. */
    public static DecoderConfig.Builder builder(int hiddenSize, int intermediateSize, int layers, int heads,
            int vocabSize) {
        return DecoderConfig.builder(INSTANCE, hiddenSize, intermediateSize, layers, heads, vocabSize)
                .optParts(parts(MlpActivation.GELU_TANH).build()).optTieWordEmbeddings(true);
    }

    @Override
    public String modelType() {
        return "gemma";
    }

    @Override
    public DecoderConfig read(ConfigFields f) throws ModelException {
        refuseBidirectional(f);
        DecoderConfig.Builder b = CommonKeys.read(this, f, DEFAULTS);
        b.optParts(parts(CommonKeys.activation(f, "hidden_act", "gelu_pytorch_tanh")).build());
        b.optBiases(LlamaFamily.biases(f.optBoolean("attention_bias", false), false));
        return CommonKeys.build(f, b);
    }

    /** Refuses {@code use_bidirectional_attention: true}, which Gemma embedding models set: they are not causal LMs. */
    public static void refuseBidirectional(ConfigFields f) throws ModelException {
        if (f.optBoolean("use_bidirectional_attention", false)) {
            throw f.unsupported("use_bidirectional_attention", "true", "false (causal attention)");
        }
    }

    /** {@code attention_bias} gives q/k/v/o a bias; the MLP has none in transformers. */
    @Override
    public String biasKey(String name) {
        return LlamaFamily.attentionBiasKey(name);
    }

    @Override
    public ObjectNode toJson(DecoderConfig c) {
        ObjectNode o = CommonKeys.json(c, "GemmaForCausalLM");
        o.put("hidden_activation", c.parts().activation().configName()); // what transformers 4.38 to 4.47 read
        o.put("attention_bias", !c.biases().isEmpty());
        return o;
    }
}
