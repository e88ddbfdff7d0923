package io.qlora4j.model.decoder;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import java.util.List;

/**
 * The config.json keys every family shares, read and written the same way: the sizes, RMSNorm epsilon, RoPE in
 * both spellings (transformers 4.x's top-level {@code rope_theta}/{@code rope_scaling} and v5's
 * {@code rope_parameters}), tied embeddings, the token ids and the dtype ({@code torch_dtype} or {@code dtype}).
 * Keys a family's config class defaults differently come from its {@link Defaults}.
 */
public final class CommonKeys {
    private static final String ROPE_TYPES = "default, linear, dynamic, llama3";

    private CommonKeys() {}

    /**
     * What a family's transformers config class puts in place of an absent key.
     *
     * @param maxPositionEmbeddings {@code max_position_embeddings}
     * @param rmsNormEps {@code rms_norm_eps}
     * @param ropeTheta the RoPE base when neither spelling gives one
     * @param tieWordEmbeddings {@code tie_word_embeddings}
     * @param numKeyValueHeads {@code num_key_value_heads}, or null for the number of attention heads
     * @param headDim {@code head_dim}, or null for {@code hidden_size / num_attention_heads}
     */
    public record Defaults(int maxPositionEmbeddings, double rmsNormEps, double ropeTheta, boolean tieWordEmbeddings,
            Integer numKeyValueHeads, Integer headDim) {}

    /**
     * A builder of {@code family} holding the shared keys of {@code f}: {@code hidden_size},
     * {@code intermediate_size}, {@code num_hidden_layers}, {@code num_attention_heads} and {@code vocab_size} are
     * required (every saved config has them); the rest take {@code defaults}.
     */
    public static DecoderConfig.Builder read(ModelFamily family, ConfigFields f, Defaults defaults)
            throws ModelException {
        int hidden = f.requiredInt("hidden_size");
        int heads = f.requiredInt("num_attention_heads");
        DecoderConfig.Builder b = DecoderConfig.builder(family, hidden, f.requiredInt("intermediate_size"),
                f.requiredInt("num_hidden_layers"), heads, f.requiredInt("vocab_size"));
        b.optNumKeyValueHeads(f.optInt("num_key_value_heads",
                defaults.numKeyValueHeads() == null ? heads : defaults.numKeyValueHeads()));
        int derivedHeadDim = heads > 0 ? hidden / heads : 0;
        b.optHeadDim(f.optInt("head_dim", defaults.headDim() == null ? derivedHeadDim : defaults.headDim()));
        b.optRmsNormEps(f.optDouble("rms_norm_eps", defaults.rmsNormEps()));
        int maxPositions = f.optInt("max_position_embeddings", defaults.maxPositionEmbeddings());
        b.optMaxPositionEmbeddings(maxPositions);
        b.optTieWordEmbeddings(f.optBoolean("tie_word_embeddings", defaults.tieWordEmbeddings()));
        b.optBosTokenId(f.optInteger("bos_token_id"));
        b.optEosTokenIds(f.intOrIntList("eos_token_id"));
        b.optTorchDtype(f.optString("torch_dtype", f.optString("dtype", null)));
        readRope(f, b, defaults.ropeTheta(), maxPositions);
        return b;
    }

    /**
     * The MLP activation named at {@code key} ({@code defaultName} when absent), refused by name when qlora4j has
     * none of that name.
     */
    public static MlpActivation activation(ConfigFields f, String key, String defaultName) throws ModelException {
        String name = f.optString(key, defaultName);
        MlpActivation activation = MlpActivation.fromConfigName(name);
        if (activation == null) {
            throw f.unsupported(key, name, MlpActivation.supported());
        }
        return activation;
    }

    /** Builds {@code b}, turning a broken rule into a one-line error naming the file. */
    public static DecoderConfig build(ConfigFields f, DecoderConfig.Builder b) throws ModelException {
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            throw new ModelException(f.source() + ": " + e.getMessage(), e);
        }
    }

    /**
     * RoPE settings as transformers resolves them: a non-null {@code rope_scaling} wins over
     * {@code rope_parameters}; {@code rope_theta} inside that object wins over the top-level key.
     */
    private static void readRope(ConfigFields f, DecoderConfig.Builder b, double defaultTheta, int maxPositions)
            throws ModelException {
        ConfigFields rope = f.object("rope_scaling");
        if (rope == null) {
            rope = f.object("rope_parameters");
        }
        b.optRopeTheta(rope != null && rope.has("rope_theta")
                ? rope.optDouble("rope_theta", 0) : f.optDouble("rope_theta", defaultTheta));
        for (ConfigFields where : rope == null ? List.of(f) : List.of(f, rope)) {
            double partial = where.optDouble("partial_rotary_factor", 1.0);
            if (partial != 1.0) {
                throw where.unsupported("partial_rotary_factor", Double.toString(partial), "1.0");
            }
        }
        if (rope == null) {
            return;
        }
        String typeKey = rope.has("rope_type") ? "rope_type" : "type";
        String type = rope.optString(typeKey, "default");
        switch (type) {
            case "default" -> b.optRopeScaling(null);
            case "linear" -> b.optRopeScaling(RopeScaling.linear(rope.requiredDouble("factor")));
            case "dynamic" -> b.optRopeScaling(RopeScaling.dynamic(rope.requiredDouble("factor")));
            case "llama3" -> {
                int original = f.optInt("original_max_position_embeddings",
                        rope.optInt("original_max_position_embeddings", maxPositions));
                try {
                    b.optRopeScaling(RopeScaling.llama3(rope.requiredDouble("factor"),
                            rope.requiredDouble("low_freq_factor"), rope.requiredDouble("high_freq_factor"), original));
                } catch (IllegalArgumentException e) {
                    throw rope.invalid(e.getMessage());
                }
            }
            default -> throw rope.unsupported(typeKey, type, ROPE_TYPES);
        }
    }

    /**
     * A config.json object for {@code c} naming {@code architecture} ({@code LlamaForCausalLM}, ...), holding the
     * shared keys ({@link #write}) and {@code hidden_act}: what a family's {@code toJson} adds its own keys to.
     */
    public static ObjectNode json(DecoderConfig c, String architecture) {
        ObjectNode o = JsonNodeFactory.instance.objectNode();
        o.putArray("architectures").add(architecture);
        write(c, o);
        o.put("hidden_act", c.parts().activation().configName());
        return o;
    }

    /**
     * Writes the shared keys of {@code c} into {@code o} the way transformers 4.x writes them (top-level
     * {@code rope_theta} and {@code rope_scaling}, {@code torch_dtype}), which every transformers version reads.
     */
    public static void write(DecoderConfig c, ObjectNode o) {
        o.put("model_type", c.modelType());
        o.put("hidden_size", c.hiddenSize());
        o.put("intermediate_size", c.intermediateSize());
        o.put("num_hidden_layers", c.numHiddenLayers());
        o.put("num_attention_heads", c.numAttentionHeads());
        o.put("num_key_value_heads", c.numKeyValueHeads());
        o.put("head_dim", c.headDim());
        o.put("vocab_size", c.vocabSize());
        o.put("rms_norm_eps", c.rmsNormEps());
        o.put("rope_theta", c.ropeTheta());
        RopeScaling s = c.ropeScaling();
        if (s == null) {
            o.putNull("rope_scaling");
        } else {
            ObjectNode r = o.putObject("rope_scaling");
            r.put("rope_type", s.type().jsonName());
            r.put("factor", s.factor());
            if (s.type() == RopeScaling.Type.LLAMA3) {
                r.put("low_freq_factor", s.lowFreqFactor());
                r.put("high_freq_factor", s.highFreqFactor());
                r.put("original_max_position_embeddings", s.originalMaxPositionEmbeddings());
            }
        }
        o.put("max_position_embeddings", c.maxPositionEmbeddings());
        o.put("tie_word_embeddings", c.tieWordEmbeddings());
        if (c.bosTokenId() != null) {
            o.put("bos_token_id", c.bosTokenId());
        }
        if (c.eosTokenIds().size() == 1) {
            o.put("eos_token_id", c.eosTokenIds().get(0));
        } else if (!c.eosTokenIds().isEmpty()) {
            ArrayNode eos = o.putArray("eos_token_id");
            c.eosTokenIds().forEach(eos::add);
        }
        if (c.torchDtype() != null) {
            o.put("torch_dtype", c.torchDtype());
        }
    }
}
