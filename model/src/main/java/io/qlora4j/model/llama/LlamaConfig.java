package io.qlora4j.model.llama;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;

/**
 * The architecture of a Llama-family checkpoint, read from a Hugging Face {@code config.json} with the
 * defaults of transformers' {@code LlamaConfig}. Both the legacy {@code rope_theta}/{@code rope_scaling}
 * keys and the newer {@code rope_parameters} object are understood.
 *
 * <p>{@code model_type} {@code mistral} is accepted: its {@code sliding_window} (null when absent) is
 * honoured by the attention mask, so Mistral-7B-v0.1 (window 4096, context 32768) runs as transformers
 * runs it.
 *
 * @param modelType {@code llama} or {@code mistral}
 * @param hiddenSize the residual stream width
 * @param intermediateSize the MLP width
 * @param numHiddenLayers the number of decoder blocks
 * @param numAttentionHeads query heads
 * @param numKeyValueHeads key/value heads (GQA when fewer than query heads)
 * @param headDim the width of one head (not necessarily hidden / heads)
 * @param vocabSize the vocabulary size
 * @param rmsNormEps the RMSNorm epsilon
 * @param ropeTheta the RoPE base
 * @param ropeScaling the RoPE scaling, or null for none
 * @param maxPositionEmbeddings the pre-training context length
 * @param slidingWindow mistral's attention window, or null for full causal attention
 * @param tieWordEmbeddings whether lm_head shares the embedding matrix
 * @param attentionBias whether q/k/v/o projections carry a bias
 * @param mlpBias whether gate/up/down projections carry a bias
 * @param bosTokenId the beginning-of-sequence id, or null
 * @param eosTokenIds the end-of-sequence ids (possibly empty)
 * @param torchDtype the checkpoint's dtype name ({@code bfloat16}, ...), or null
 */
public record LlamaConfig(
        String modelType,
        int hiddenSize,
        int intermediateSize,
        int numHiddenLayers,
        int numAttentionHeads,
        int numKeyValueHeads,
        int headDim,
        int vocabSize,
        double rmsNormEps,
        double ropeTheta,
        RopeScaling ropeScaling,
        int maxPositionEmbeddings,
        Integer slidingWindow,
        boolean tieWordEmbeddings,
        boolean attentionBias,
        boolean mlpBias,
        Integer bosTokenId,
        List<Integer> eosTokenIds,
        String torchDtype) {

    private static final List<String> MODEL_TYPES = List.of("llama", "mistral");
    private static final String ROPE_TYPES = "default, linear, dynamic, llama3";
    private static final ObjectMapper JSON = new ObjectMapper();

    /** Checks that the shapes are consistent (heads a multiple of kv heads, even head_dim, positive sizes). */
    public LlamaConfig {
        if (!MODEL_TYPES.contains(modelType)) {
            throw new IllegalArgumentException("model_type '" + modelType + "' is not supported (supported: llama, mistral)");
        }
        if (hiddenSize <= 0 || intermediateSize <= 0 || numHiddenLayers <= 0 || numAttentionHeads <= 0
                || numKeyValueHeads <= 0 || headDim <= 0 || vocabSize <= 0 || maxPositionEmbeddings <= 0) {
            throw new IllegalArgumentException("sizes must be positive");
        }
        if (numAttentionHeads % numKeyValueHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads " + numAttentionHeads
                    + " is not a multiple of num_key_value_heads " + numKeyValueHeads);
        }
        if (headDim % 2 != 0) {
            throw new IllegalArgumentException("head_dim " + headDim + " must be even for rotate_half RoPE");
        }
        if (!(rmsNormEps > 0) || !(ropeTheta > 0)) {
            throw new IllegalArgumentException("rms_norm_eps and rope_theta must be positive");
        }
        if (slidingWindow != null && slidingWindow <= 0) {
            throw new IllegalArgumentException("sliding_window must be positive, got " + slidingWindow);
        }
        eosTokenIds = List.copyOf(eosTokenIds == null ? List.of() : eosTokenIds);
    }

    /** Starts a config with the required sizes and transformers' defaults for everything else. */
    public static Builder builder(int hiddenSize, int intermediateSize, int layers, int heads, int vocabSize) {
        return new Builder(hiddenSize, intermediateSize, layers, heads, vocabSize);
    }

    /** Width of the concatenated query heads ({@code heads * head_dim}). */
    public int queryDim() {
        return numAttentionHeads * headDim;
    }

    /** Width of the concatenated key (or value) heads ({@code kv_heads * head_dim}). */
    public int keyValueDim() {
        return numKeyValueHeads * headDim;
    }

    /** Reads a {@code config.json}; every problem is a one-line error naming the file and the key. */
    public static LlamaConfig read(Path configJson) throws ModelException {
        String text;
        try {
            text = Files.readString(configJson, StandardCharsets.UTF_8);
        } catch (NoSuchFileException e) {
            throw new ModelException(configJson + ": file not found", e);
        } catch (IOException e) {
            throw new ModelException(configJson + ": cannot read (" + e.getMessage() + ")", e);
        }
        return parse(text, configJson.toString());
    }

    /** Parses config.json text; {@code source} names it in error messages. */
    public static LlamaConfig parse(String json, String source) throws ModelException {
        JsonNode root;
        try {
            root = JSON.readTree(json);
        } catch (JsonProcessingException e) {
            String where = e.getLocation() == null ? ""
                    : " at line " + e.getLocation().getLineNr() + ", column " + e.getLocation().getColumnNr();
            throw new ModelException(source + ": not valid JSON" + where + " (" + e.getOriginalMessage() + ")", e);
        }
        if (root == null || !root.isObject()) {
            throw new ModelException(source + ": expected a JSON object");
        }
        JsonFields f = new JsonFields(root, source, "");
        f.require("model_type");
        String modelType = f.optString("model_type", null);
        if (!MODEL_TYPES.contains(modelType)) {
            throw f.unsupported("model_type", modelType, String.join(", ", MODEL_TYPES));
        }
        String act = f.optString("hidden_act", "silu");
        if (!act.equals("silu")) {
            throw f.unsupported("hidden_act", act, "silu");
        }
        int hidden = f.requiredInt("hidden_size");
        int heads = f.requiredInt("num_attention_heads");
        int maxPositions = f.optInt("max_position_embeddings", 2048);
        Builder b = new Builder(hidden, f.requiredInt("intermediate_size"), f.requiredInt("num_hidden_layers"),
                heads, f.requiredInt("vocab_size"));
        b.modelType = modelType;
        b.numKeyValueHeads = f.optInt("num_key_value_heads", heads);
        b.headDim = f.optInt("head_dim", heads > 0 ? hidden / heads : 0);
        b.rmsNormEps = f.optDouble("rms_norm_eps", 1e-6);
        b.maxPositionEmbeddings = maxPositions;
        b.slidingWindow = f.optInteger("sliding_window");
        b.tieWordEmbeddings = f.optBoolean("tie_word_embeddings", false);
        b.attentionBias = f.optBoolean("attention_bias", false);
        b.mlpBias = f.optBoolean("mlp_bias", false);
        b.bosTokenId = f.optInteger("bos_token_id");
        b.eosTokenIds = f.intOrIntList("eos_token_id");
        b.torchDtype = f.optString("torch_dtype", f.optString("dtype", null));
        readRope(f, b);
        try {
            return b.build();
        } catch (IllegalArgumentException e) {
            throw new ModelException(source + ": " + e.getMessage(), e);
        }
    }

    /**
     * RoPE settings as transformers resolves them: a non-null {@code rope_scaling} wins over
     * {@code rope_parameters}; {@code rope_theta} inside that object wins over the top-level key.
     */
    private static void readRope(JsonFields f, Builder b) throws ModelException {
        JsonFields rope = f.object("rope_scaling");
        if (rope == null) {
            rope = f.object("rope_parameters");
        }
        b.ropeTheta = rope != null && rope.has("rope_theta")
                ? rope.optDouble("rope_theta", 0) : f.optDouble("rope_theta", 10000.0);
        for (JsonFields where : rope == null ? List.of(f) : List.of(f, rope)) {
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
            case "default" -> b.ropeScaling = null;
            case "linear" -> b.ropeScaling = RopeScaling.linear(rope.requiredDouble("factor"));
            case "dynamic" -> b.ropeScaling = RopeScaling.dynamic(rope.requiredDouble("factor"));
            case "llama3" -> {
                int original = f.optInt("original_max_position_embeddings",
                        rope.optInt("original_max_position_embeddings", b.maxPositionEmbeddings));
                try {
                    b.ropeScaling = RopeScaling.llama3(rope.requiredDouble("factor"),
                            rope.requiredDouble("low_freq_factor"), rope.requiredDouble("high_freq_factor"), original);
                } catch (IllegalArgumentException e) {
                    throw rope.invalid(e.getMessage());
                }
            }
            default -> throw rope.unsupported(typeKey, type, ROPE_TYPES);
        }
    }

    /** The config as config.json content (legacy rope_theta/rope_scaling keys, read by every transformers). */
    public ObjectNode toJson() {
        ObjectNode o = JSON.createObjectNode();
        o.putArray("architectures").add(modelType.equals("mistral") ? "MistralForCausalLM" : "LlamaForCausalLM");
        o.put("model_type", modelType);
        o.put("hidden_size", hiddenSize);
        o.put("intermediate_size", intermediateSize);
        o.put("num_hidden_layers", numHiddenLayers);
        o.put("num_attention_heads", numAttentionHeads);
        o.put("num_key_value_heads", numKeyValueHeads);
        o.put("head_dim", headDim);
        o.put("vocab_size", vocabSize);
        o.put("hidden_act", "silu");
        o.put("rms_norm_eps", rmsNormEps);
        o.put("rope_theta", ropeTheta);
        if (ropeScaling == null) {
            o.putNull("rope_scaling");
        } else {
            ObjectNode r = o.putObject("rope_scaling");
            r.put("rope_type", ropeScaling.type().jsonName());
            r.put("factor", ropeScaling.factor());
            if (ropeScaling.type() == RopeScaling.Type.LLAMA3) {
                r.put("low_freq_factor", ropeScaling.lowFreqFactor());
                r.put("high_freq_factor", ropeScaling.highFreqFactor());
                r.put("original_max_position_embeddings", ropeScaling.originalMaxPositionEmbeddings());
            }
        }
        o.put("max_position_embeddings", maxPositionEmbeddings);
        if (slidingWindow != null) {
            o.put("sliding_window", slidingWindow);
        }
        o.put("tie_word_embeddings", tieWordEmbeddings);
        o.put("attention_bias", attentionBias);
        o.put("mlp_bias", mlpBias);
        if (bosTokenId != null) {
            o.put("bos_token_id", bosTokenId);
        }
        if (eosTokenIds.size() == 1) {
            o.put("eos_token_id", eosTokenIds.get(0));
        } else if (!eosTokenIds.isEmpty()) {
            ArrayNode eos = o.putArray("eos_token_id");
            eosTokenIds.forEach(eos::add);
        }
        if (torchDtype != null) {
            o.put("torch_dtype", torchDtype);
        }
        return o;
    }

    /** Writes {@link #toJson()} as an indented config.json. */
    public void write(Path configJson) throws IOException {
        Files.writeString(configJson, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(toJson()) + "\n",
                StandardCharsets.UTF_8);
    }

    /** Builds a config in code (tests, benchmarks, the demo model) with transformers' defaults. */
    public static final class Builder {
        private final int hiddenSize;
        private final int intermediateSize;
        private final int numHiddenLayers;
        private final int numAttentionHeads;
        private final int vocabSize;
        private String modelType = "llama";
        private int numKeyValueHeads;
        private int headDim;
        private double rmsNormEps = 1e-6;
        private double ropeTheta = 10000.0;
        private RopeScaling ropeScaling;
        private int maxPositionEmbeddings = 2048;
        private Integer slidingWindow;
        private boolean tieWordEmbeddings;
        private boolean attentionBias;
        private boolean mlpBias;
        private Integer bosTokenId;
        private List<Integer> eosTokenIds = List.of();
        private String torchDtype;

        private Builder(int hiddenSize, int intermediateSize, int layers, int heads, int vocabSize) {
            this.hiddenSize = hiddenSize;
            this.intermediateSize = intermediateSize;
            this.numHiddenLayers = layers;
            this.numAttentionHeads = heads;
            this.vocabSize = vocabSize;
            this.numKeyValueHeads = heads;
            this.headDim = heads > 0 ? hiddenSize / heads : 0;
        }

        /** Sets model_type ({@code llama} or {@code mistral}). */
        public Builder optModelType(String value) {
            modelType = value;
            return this;
        }

        /** Sets num_key_value_heads (default: the number of attention heads). */
        public Builder optNumKeyValueHeads(int value) {
            numKeyValueHeads = value;
            return this;
        }

        /** Sets head_dim (default: hidden / heads). */
        public Builder optHeadDim(int value) {
            headDim = value;
            return this;
        }

        /** Sets rms_norm_eps (default 1e-6). */
        public Builder optRmsNormEps(double value) {
            rmsNormEps = value;
            return this;
        }

        /** Sets rope_theta (default 10000). */
        public Builder optRopeTheta(double value) {
            ropeTheta = value;
            return this;
        }

        /** Sets the RoPE scaling (default none). */
        public Builder optRopeScaling(RopeScaling value) {
            ropeScaling = value;
            return this;
        }

        /** Sets max_position_embeddings (default 2048). */
        public Builder optMaxPositionEmbeddings(int value) {
            maxPositionEmbeddings = value;
            return this;
        }

        /** Sets mistral's sliding_window (default none). */
        public Builder optSlidingWindow(Integer value) {
            slidingWindow = value;
            return this;
        }

        /** Sets tie_word_embeddings (default false). */
        public Builder optTieWordEmbeddings(boolean value) {
            tieWordEmbeddings = value;
            return this;
        }

        /** Sets attention_bias (default false). */
        public Builder optAttentionBias(boolean value) {
            attentionBias = value;
            return this;
        }

        /** Sets mlp_bias (default false). */
        public Builder optMlpBias(boolean value) {
            mlpBias = value;
            return this;
        }

        /** Sets bos_token_id (default none). */
        public Builder optBosTokenId(Integer value) {
            bosTokenId = value;
            return this;
        }

        /** Sets the eos_token_id list (default empty). */
        public Builder optEosTokenIds(List<Integer> value) {
            eosTokenIds = value;
            return this;
        }

        /** Sets torch_dtype (default none). */
        public Builder optTorchDtype(String value) {
            torchDtype = value;
            return this;
        }

        /** Builds the validated config. */
        public LlamaConfig build() {
            return new LlamaConfig(modelType, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                    numKeyValueHeads, headDim, vocabSize, rmsNormEps, ropeTheta, ropeScaling, maxPositionEmbeddings,
                    slidingWindow, tieWordEmbeddings, attentionBias, mlpBias, bosTokenId, eosTokenIds, torchDtype);
        }
    }
}
