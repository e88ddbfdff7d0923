package io.qlora4j.model.mistral;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.CommonKeys;
import io.qlora4j.model.decoder.ConfigFields;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.DecoderParts;
import io.qlora4j.model.decoder.ModelFamily;

/**
 * {@code model_type: mistral} as transformers' {@code MistralConfig} and {@code modular_mistral} define it: Llama's
 * block without any bias (there is no {@code attention_bias} key), every layer attending through
 * {@code sliding_window} (4096 when the key is absent, none when it is null); defaults 8 key/value heads,
 * {@code max_position_embeddings} 131072, {@code rms_norm_eps} 1e-6.
 */
public final class MistralFamily implements ModelFamily {
    /** The family. */
    public static final MistralFamily INSTANCE = new MistralFamily();

    private static final CommonKeys.Defaults DEFAULTS = CommonKeys.Defaults.of(4096 * 32, 1e-6, 10000.0, false)
            .withKeyValueHeads(8);
    private static final int DEFAULT_WINDOW = 4096;

    private MistralFamily() {}

    /** A Mistral config in code (tests, benchmarks) with the required sizes; no window unless one is set. */
    public static DecoderConfig.Builder builder(int hiddenSize, int intermediateSize, int layers, int heads,
            int vocabSize) {
        return DecoderConfig.builder(INSTANCE, hiddenSize, intermediateSize, layers, heads, vocabSize);
    }

    @Override
    public String modelType() {
        return "mistral";
    }

    @Override
    public DecoderConfig read(ConfigFields f) throws ModelException {
        DecoderConfig.Builder b = CommonKeys.read(this, f, DEFAULTS);
        b.optParts(DecoderParts.builder().optActivation(CommonKeys.activation(f, "hidden_act", "silu")).build());
        b.optSlidingWindow(f.contains("sliding_window") ? f.optInteger("sliding_window") : (Integer) DEFAULT_WINDOW);
        return CommonKeys.build(f, b);
    }

    @Override
    public ObjectNode toJson(DecoderConfig c) {
        ObjectNode o = CommonKeys.json(c, "MistralForCausalLM");
        if (c.slidingWindow() == null) {
            o.putNull("sliding_window");
        } else {
            o.put("sliding_window", c.slidingWindow());
        }
        return o;
    }
}
