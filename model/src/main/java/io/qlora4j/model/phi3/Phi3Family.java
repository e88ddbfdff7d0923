package io.qlora4j.model.phi3;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.CommonKeys;
import io.qlora4j.model.decoder.ConfigFields;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.DecoderParts;
import io.qlora4j.model.decoder.ModelFamily;
import io.qlora4j.model.decoder.RopeScaling;

/**
 * {@code model_type: phi3} (Phi-3, Phi-3.5, Phi-4-mini) as transformers' {@code Phi3Config} and {@code modular_phi3}
 * define it: q, k and v come from one {@code self_attn.qkv_proj} (rows q, then k, then v) and gate and up from one
 * {@code mlp.gate_up_proj} (gate the first half), no biases; RoPE may rotate only the first
 * {@code int(head_dim * partial_rotary_factor)} features and may be {@code longrope} (legacy names {@code su} and
 * {@code yarn}) with short and long factors, a context of {@code original_max_position_embeddings} (default 4096)
 * and cos/sin scaled by the attention factor; {@code sliding_window} (default none) on every layer; defaults
 * {@code rms_norm_eps} 1e-5, {@code max_position_embeddings} 4096, untied. Dropouts are the identity outside
 * training and qlora4j applies none to the base model.
 */
public final class Phi3Family implements ModelFamily {
    /** The family. */
    public static final Phi3Family INSTANCE = new Phi3Family();

    private static final CommonKeys.Defaults DEFAULTS = CommonKeys.Defaults.of(4096, 1e-5, 10000.0, false)
            .withPhi3Rope(4096);
    private static final DecoderParts PARTS = DecoderParts.builder().optFusedQkv(true).optFusedGateUp(true).build();

    private Phi3Family() {}

    /** A Phi-3 config in code (tests, benchmarks): fused projections, SiLU, rms_norm_eps 1e-5, untied. */
    public static DecoderConfig.Builder builder(int hiddenSize, int intermediateSize, int layers, int heads,
            int vocabSize) {
        return DecoderConfig.builder(INSTANCE, hiddenSize, intermediateSize, layers, heads, vocabSize).optParts(PARTS)
                .optRmsNormEps(1e-5);
    }

    @Override
    public String modelType() {
        return "phi3";
    }

    @Override
    public DecoderConfig read(ConfigFields f) throws ModelException {
        DecoderConfig.Builder b = CommonKeys.read(this, f, DEFAULTS);
        b.optParts(DecoderParts.builder().optFusedQkv(true).optFusedGateUp(true)
                .optActivation(CommonKeys.activation(f, "hidden_act", "silu")).build());
        b.optSlidingWindow(f.optInteger("sliding_window"));
        return CommonKeys.build(f, b);
    }

    @Override
    public ObjectNode toJson(DecoderConfig c) {
        ObjectNode o = CommonKeys.json(c, "Phi3ForCausalLM");
        RopeScaling s = c.ropeScaling();
        if (s != null && s.type() == RopeScaling.Type.LONGROPE) {
            o.put("original_max_position_embeddings", s.originalMaxPositionEmbeddings());
        }
        if (c.slidingWindow() == null) {
            o.putNull("sliding_window");
        } else {
            o.put("sliding_window", c.slidingWindow());
        }
        return o;
    }
}
