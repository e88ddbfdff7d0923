package io.qlora4j.model.decoder;

import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.JsonNodeFactory;
import com.fasterxml.jackson.databind.node.ObjectNode;
import com.fasterxml.jackson.databind.node.TextNode;
import io.qlora4j.model.ModelException;
import java.util.ArrayList;
import java.util.List;
import java.util.function.IntPredicate;

/**
 * The config.json keys every family shares, read and written the same way: the sizes, RMSNorm epsilon, RoPE in
 * both spellings (transformers 4.x's top-level {@code rope_theta}/{@code rope_scaling} and v5's
 * {@code rope_parameters}), tied embeddings, the token ids, the dtype ({@code torch_dtype} or {@code dtype}) and
 * {@code layer_types}. Keys a family's config class defaults differently come from its {@link Defaults}.
 */
public final class CommonKeys {
    private static final String ROPE_TYPES = "default, linear, dynamic, llama3, longrope";
    /** The dtype names a config.json's {@code torch_dtype} (or {@code dtype}) takes: torch's float types and auto. */
    private static final List<String> TORCH_DTYPES = List.of("float32", "float16", "bfloat16", "float64", "float",
            "half", "double", "auto");
    private static final String FULL = "full_attention";
    private static final String SLIDING = "sliding_attention";

    private CommonKeys() {}

    /**
     * What a family's transformers config class puts in place of an absent key, and which RoPE options it has.
     *
     * @param maxPositionEmbeddings {@code max_position_embeddings}
     * @param rmsNormEps {@code rms_norm_eps}
     * @param ropeTheta the RoPE base when neither spelling gives one
     * @param tieWordEmbeddings {@code tie_word_embeddings}
     * @param numKeyValueHeads {@code num_key_value_heads}, or null for the number of attention heads
     * @param headDim {@code head_dim}, or null for {@code hidden_size / num_attention_heads}
     * @param phi3Rope Phi-3's RoPE: {@code partial_rotary_factor} (in the rope object or at the top level), legacy
     *     type names {@code su} and {@code yarn} for longrope, and a top-level
     *     {@code original_max_position_embeddings} (default {@code originalMaxPositionEmbeddings})
     * @param originalMaxPositionEmbeddings with {@code phi3Rope}: the class default of
     *     {@code original_max_position_embeddings}
     */
    public record Defaults(int maxPositionEmbeddings, double rmsNormEps, double ropeTheta, boolean tieWordEmbeddings,
            Integer numKeyValueHeads, Integer headDim, boolean phi3Rope, int originalMaxPositionEmbeddings) {

        /** Defaults with key/value heads equal to the attention heads, head_dim hidden / heads, Llama's RoPE. */
        public static Defaults of(int maxPositionEmbeddings, double rmsNormEps, double ropeTheta,
                boolean tieWordEmbeddings) {
            return new Defaults(maxPositionEmbeddings, rmsNormEps, ropeTheta, tieWordEmbeddings, null, null, false, 0);
        }

        /** These defaults with {@code num_key_value_heads} defaulting to {@code value}. */
        public Defaults withKeyValueHeads(int value) {
            return new Defaults(maxPositionEmbeddings, rmsNormEps, ropeTheta, tieWordEmbeddings, value, headDim,
                    phi3Rope, originalMaxPositionEmbeddings);
        }

        /** These defaults with {@code head_dim} defaulting to {@code value}. */
        public Defaults withHeadDim(int value) {
            return new Defaults(maxPositionEmbeddings, rmsNormEps, ropeTheta, tieWordEmbeddings, numKeyValueHeads,
                    value, phi3Rope, originalMaxPositionEmbeddings);
        }

        /** These defaults with Phi-3's RoPE options and {@code original_max_position_embeddings} default. */
        public Defaults withPhi3Rope(int originalMax) {
            return new Defaults(maxPositionEmbeddings, rmsNormEps, ropeTheta, tieWordEmbeddings, numKeyValueHeads,
                    headDim, true, originalMax);
        }
    }

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
        // an explicit null means "as many as the attention heads" in every config class; absent takes the default
        boolean nullKv = f.contains("num_key_value_heads") || defaults.numKeyValueHeads() == null;
        b.optNumKeyValueHeads(f.optInt("num_key_value_heads", nullKv ? heads : defaults.numKeyValueHeads()));
        int derivedHeadDim = heads > 0 ? hidden / heads : 0;
        int headDim = f.optInt("head_dim", defaults.headDim() == null ? derivedHeadDim : defaults.headDim());
        b.optHeadDim(headDim);
        b.optRmsNormEps(f.optDouble("rms_norm_eps", defaults.rmsNormEps()));
        int maxPositions = f.optInt("max_position_embeddings", defaults.maxPositionEmbeddings());
        b.optMaxPositionEmbeddings(maxPositions);
        b.optTieWordEmbeddings(f.optBoolean("tie_word_embeddings", defaults.tieWordEmbeddings()));
        b.optBosTokenId(f.optInteger("bos_token_id"));
        b.optEosTokenIds(f.intOrIntList("eos_token_id"));
        String dtypeKey = f.has("torch_dtype") ? "torch_dtype" : "dtype";
        String dtype = f.optString(dtypeKey, null);
        if (dtype != null && !TORCH_DTYPES.contains(dtype)) {
            throw f.error(dtypeKey, "must name a dtype qlora4j reads (" + String.join(", ", TORCH_DTYPES) + ")",
                    new TextNode(dtype));
        }
        b.optTorchDtype(dtype);
        readRope(f, b, defaults, maxPositions, headDim);
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

    /**
     * Which of the {@code layers} layers slide: config.json's {@code layer_types} when written (each
     * {@code full_attention} or {@code sliding_attention}, one per layer), else {@code defaultSliding}.
     */
    public static List<Boolean> slidingLayers(ConfigFields f, int layers, IntPredicate defaultSliding)
            throws ModelException {
        List<String> types = f.optStringList("layer_types");
        List<Boolean> sliding = new ArrayList<>();
        if (types == null) {
            for (int i = 0; i < layers; i++) {
                sliding.add(defaultSliding.test(i));
            }
            return sliding;
        }
        if (types.size() != layers) {
            throw f.invalid("layer_types has " + types.size() + " entries for num_hidden_layers " + layers);
        }
        for (String type : types) {
            if (!type.equals(FULL) && !type.equals(SLIDING)) {
                throw f.unsupported("layer_types", type, FULL + ", " + SLIDING);
            }
            sliding.add(type.equals(SLIDING));
        }
        return sliding;
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
    private static void readRope(ConfigFields f, DecoderConfig.Builder b, Defaults defaults, int maxPositions,
            int headDim)
            throws ModelException {
        ConfigFields rope = f.object("rope_scaling");
        if (rope == null) {
            rope = f.object("rope_parameters");
        }
        b.optRopeTheta(rope != null && rope.has("rope_theta")
                ? rope.optDouble("rope_theta", 0) : f.optDouble("rope_theta", defaults.ropeTheta()));
        ConfigFields partialAt = rope != null && rope.has("partial_rotary_factor") ? rope : f;
        double partial = partialAt.optDouble("partial_rotary_factor", 1.0);
        if (partial != 1.0 && !defaults.phi3Rope()) {
            throw partialAt.unsupported("partial_rotary_factor", Double.toString(partial), "1.0");
        }
        b.optPartialRotaryFactor(partial);
        if (rope == null) {
            return;
        }
        String typeKey = rope.has("rope_type") ? "rope_type" : "type";
        String type = rope.optString(typeKey, "default");
        if (defaults.phi3Rope() && (type.equals("su") || type.equals("yarn"))) {
            type = "longrope";
        }
        try {
            switch (type) {
                case "default" -> b.optRopeScaling(null);
                case "linear" -> b.optRopeScaling(RopeScaling.linear(rope.requiredDouble("factor")));
                case "dynamic" -> b.optRopeScaling(RopeScaling.dynamic(rope.requiredDouble("factor")));
                case "llama3" -> b.optRopeScaling(RopeScaling.llama3(rope.requiredDouble("factor"),
                        rope.requiredDouble("low_freq_factor"), rope.requiredDouble("high_freq_factor"),
                        originalMaxPositions(f, rope, defaults, maxPositions)));
                case "longrope" -> {
                    int original = originalMaxPositions(f, rope, defaults, maxPositions);
                    double factor = rope.has("factor") ? rope.optDouble("factor", 0) : (double) maxPositions / original;
                    List<Double> shortFactor = rope.requiredDoubleList("short_factor");
                    int frequencies = (int) (headDim * partial) / 2;
                    if (shortFactor.size() != frequencies) {
                        throw rope.invalid("longrope short_factor and long_factor must have " + frequencies
                                + " entries (rotated features / 2), got " + shortFactor.size());
                    }
                    b.optRopeScaling(RopeScaling.longrope(factor, original, shortFactor,
                            rope.requiredDoubleList("long_factor"), rope.optNullableDouble("attention_factor", null)));
                }
                default -> throw rope.unsupported(typeKey, type, ROPE_TYPES);
            }
        } catch (IllegalArgumentException e) {
            throw rope.invalid(e.getMessage());
        }
    }

    /**
     * The pre-training context of a llama3 or longrope scaling, as transformers' {@code standardize_rope_params}
     * settles it: a top-level {@code original_max_position_embeddings} wins over the rope object's, and a family whose
     * config class declares that field (Phi-3: 4096) takes its default when the file has none at the top level; else
     * the rope object's value, else {@code max_position_embeddings}.
     */
    private static int originalMaxPositions(ConfigFields f, ConfigFields rope, Defaults defaults,
            int maxPositions) throws ModelException {
        if (f.has("original_max_position_embeddings") || defaults.phi3Rope()) {
            return f.optInt("original_max_position_embeddings", defaults.originalMaxPositionEmbeddings());
        }
        return rope.optInt("original_max_position_embeddings", maxPositions);
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
        if (c.partialRotaryFactor() != 1.0) {
            o.put("partial_rotary_factor", c.partialRotaryFactor());
        }
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
            }
            if (s.type() == RopeScaling.Type.LLAMA3 || s.type() == RopeScaling.Type.LONGROPE) {
                r.put("original_max_position_embeddings", s.originalMaxPositionEmbeddings());
            }
            if (s.type() == RopeScaling.Type.LONGROPE) {
                s.shortFactor().forEach(r.putArray("short_factor")::add);
                s.longFactor().forEach(r.putArray("long_factor")::add);
                r.put("attention_factor", s.attentionFactor());
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

    /** Writes {@code sliding_window} (null for none) and the {@code layer_types} of {@code c}. */
    public static void writeWindows(DecoderConfig c, ObjectNode o) {
        if (c.slidingWindow() == null) {
            o.putNull("sliding_window");
        } else {
            o.put("sliding_window", c.slidingWindow());
        }
        ArrayNode types = o.putArray("layer_types");
        c.slidingLayers().forEach(sliding -> types.add(sliding ? SLIDING : FULL));
    }
}
