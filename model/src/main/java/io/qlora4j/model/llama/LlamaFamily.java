package io.qlora4j.model.llama;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.CommonKeys;
import io.qlora4j.model.decoder.ConfigFields;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.DecoderParts;
import io.qlora4j.model.decoder.ModelFamily;
import java.util.HashSet;
import java.util.Set;

/**
 * {@code model_type: llama} (Llama 1/2/3, TinyLlama, and the many checkpoints that reuse Llama's architecture) as
 * transformers' {@code LlamaConfig} and {@code modeling_llama} define it: {@code x * w} RMSNorm, {@code hidden_act}
 * (default SiLU) gated MLP, full causal attention, {@code attention_bias} on q/k/v/o and {@code mlp_bias} on
 * gate/up/down; defaults {@code rms_norm_eps} 1e-6, {@code max_position_embeddings} 2048, untied.
 */
public final class LlamaFamily implements ModelFamily {
    /** The family. */
    public static final LlamaFamily INSTANCE = new LlamaFamily();

    private static final CommonKeys.Defaults DEFAULTS = CommonKeys.Defaults.of(2048, 1e-6, 10000.0, false);

    private LlamaFamily() {}

    /** A Llama config in code (tests, benchmarks) with the required sizes and LlamaConfig's defaults. */
    public static DecoderConfig.Builder builder(int hiddenSize, int intermediateSize, int layers, int heads,
            int vocabSize) {
        return DecoderConfig.builder(INSTANCE, hiddenSize, intermediateSize, layers, heads, vocabSize);
    }

    /** The biased projections of {@code attention_bias} (q/k/v/o) and {@code mlp_bias} (gate/up/down). */
    public static Set<String> biases(boolean attentionBias, boolean mlpBias) {
        Set<String> biases = new HashSet<>();
        if (attentionBias) {
            biases.addAll(DecoderConfig.ATTENTION_LINEARS);
        }
        if (mlpBias) {
            biases.addAll(DecoderConfig.MLP_LINEARS);
        }
        return biases;
    }

    @Override
    public String modelType() {
        return "llama";
    }

    @Override
    public DecoderConfig read(ConfigFields f) throws ModelException {
        DecoderConfig.Builder b = CommonKeys.read(this, f, DEFAULTS);
        b.optParts(DecoderParts.builder().optActivation(CommonKeys.activation(f, "hidden_act", "silu")).build());
        b.optBiases(biases(f.optBoolean("attention_bias", false), f.optBoolean("mlp_bias", false)));
        return CommonKeys.build(f, b);
    }

    /** {@code attention_bias} for q/k/v/o, null for any other projection: the key of families with attention biases only. */
    public static String attentionBiasKey(String name) {
        return DecoderConfig.ATTENTION_LINEARS.contains(name) ? "attention_bias" : null;
    }

    @Override
    public String biasKey(String name) {
        return DecoderConfig.ATTENTION_LINEARS.contains(name) ? "attention_bias" : "mlp_bias";
    }

    @Override
    public ObjectNode toJson(DecoderConfig c) {
        ObjectNode o = CommonKeys.json(c, "LlamaForCausalLM");
        o.put("attention_bias", c.biases().containsAll(DecoderConfig.ATTENTION_LINEARS));
        o.put("mlp_bias", c.biases().containsAll(DecoderConfig.MLP_LINEARS));
        return o;
    }
}
