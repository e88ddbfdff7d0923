package io.qlora4j.model.decoder;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * The architecture of a decoder-only causal LM, whatever its family: the sizes, RoPE, the attention window of
 * each layer, which projections carry a bias, the block's parts ({@link DecoderParts}) and the token ids. A
 * family ({@link ModelFamily}) reads it from config.json with its own transformers defaults and writes it back;
 * the generic decoder ({@link TransformerLM}, {@link TransformerBlock}) and the loader read only this record.
 *
 * @param family the family that read the config (it names {@code model_type} and writes config.json)
 * @param hiddenSize the residual stream width
 * @param intermediateSize the MLP width
 * @param numHiddenLayers the number of decoder blocks
 * @param numAttentionHeads query heads
 * @param numKeyValueHeads key/value heads (GQA when fewer than query heads, MQA at one)
 * @param headDim the width of one head (not necessarily hidden / heads)
 * @param vocabSize the vocabulary size
 * @param rmsNormEps the RMSNorm epsilon
 * @param ropeTheta the RoPE base
 * @param ropeScaling the RoPE scaling, or null for none
 * @param partialRotaryFactor the share of each head's features that RoPE rotates (the first
 *     {@code int(head_dim * factor)}; the rest pass through), 1 for all
 * @param maxPositionEmbeddings the pre-training context length
 * @param slidingWindow the attention window of the sliding layers (a key is seen iff {@code q - k < window}), or
 *     null when no layer slides
 * @param slidingLayers for each layer, whether it attends through {@code slidingWindow} (all false without one)
 * @param tieWordEmbeddings whether lm_head shares the embedding matrix
 * @param biases the projections ({@link #linearNames()} entries) that carry a bias
 * @param parts the pieces of the block and model that differ between families
 * @param bosTokenId the beginning-of-sequence id, or null
 * @param eosTokenIds the end-of-sequence ids (possibly empty)
 * @param torchDtype the checkpoint's dtype name ({@code bfloat16}, ...), or null
 */
public record DecoderConfig(
        ModelFamily family,
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
        double partialRotaryFactor,
        int maxPositionEmbeddings,
        Integer slidingWindow,
        List<Boolean> slidingLayers,
        boolean tieWordEmbeddings,
        Set<String> biases,
        DecoderParts parts,
        Integer bosTokenId,
        List<Integer> eosTokenIds,
        String torchDtype) {

    /** The four attention projections of an unfused block, in block order. */
    public static final List<String> ATTENTION_LINEARS =
            List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj");
    /** The three MLP projections of an unfused block, in block order. */
    public static final List<String> MLP_LINEARS = List.of("mlp.gate_proj", "mlp.up_proj", "mlp.down_proj");

    /** q, k and v fused into one projection (Phi-3). */
    public static final String QKV_PROJ = "self_attn.qkv_proj";
    /** gate and up fused into one projection (Phi-3). */
    public static final String GATE_UP_PROJ = "mlp.gate_up_proj";
    /** Every projection name a block of some family has: what a LoRA target may name before a model is known. */
    public static final List<String> KNOWN_LINEARS = concat(ATTENTION_LINEARS, MLP_LINEARS, List.of(QKV_PROJ,
            GATE_UP_PROJ));

    private static final ObjectMapper JSON = new ObjectMapper();

    /** Checks that the sizes are consistent (heads a multiple of kv heads, even head_dim, positive sizes). */
    public DecoderConfig {
        if (family == null || parts == null) {
            throw new IllegalArgumentException("a config needs its family and parts");
        }
        requirePositive("hidden_size", hiddenSize);
        requirePositive("intermediate_size", intermediateSize);
        requirePositive("num_hidden_layers", numHiddenLayers);
        requirePositive("num_attention_heads", numAttentionHeads);
        requirePositive("num_key_value_heads", numKeyValueHeads);
        requirePositive("head_dim", headDim);
        requirePositive("vocab_size", vocabSize);
        requirePositive("max_position_embeddings", maxPositionEmbeddings);
        if (numAttentionHeads % numKeyValueHeads != 0) {
            throw new IllegalArgumentException("num_attention_heads " + numAttentionHeads
                    + " is not a multiple of num_key_value_heads " + numKeyValueHeads);
        }
        if (!(partialRotaryFactor > 0 && partialRotaryFactor <= 1)) {
            throw new IllegalArgumentException("partial_rotary_factor must be in (0, 1], got " + partialRotaryFactor);
        }
        int rotaryDim = (int) (headDim * partialRotaryFactor);
        if (rotaryDim % 2 != 0 || rotaryDim == 0) {
            throw new IllegalArgumentException("head_dim " + headDim + (partialRotaryFactor == 1 ? ""
                    : " x partial_rotary_factor " + partialRotaryFactor) + " must give an even number of rotated"
                    + " features for rotate_half RoPE");
        }
        if (ropeScaling != null && ropeScaling.type() == RopeScaling.Type.LONGROPE
                && ropeScaling.shortFactor().size() != rotaryDim / 2) {
            throw new IllegalArgumentException("longrope short_factor and long_factor must have " + rotaryDim / 2
                    + " entries (rotated features / 2), got " + ropeScaling.shortFactor().size());
        }
        requirePositive("rms_norm_eps", rmsNormEps);
        requirePositive("rope_theta", ropeTheta);
        if (slidingWindow != null && slidingWindow <= 0) {
            throw new IllegalArgumentException("sliding_window must be positive, got " + slidingWindow);
        }
        slidingLayers = List.copyOf(slidingLayers == null || slidingWindow == null
                ? Collections.nCopies(numHiddenLayers, slidingWindow != null) : slidingLayers);
        if (slidingLayers.size() != numHiddenLayers) {
            throw new IllegalArgumentException("layer_types has " + slidingLayers.size() + " entries for "
                    + numHiddenLayers + " layers");
        }
        biases = Set.copyOf(biases == null ? Set.of() : biases);
        eosTokenIds = List.copyOf(eosTokenIds == null ? List.of() : eosTokenIds);
        for (String biased : biases) {
            if (!linearNames(parts).contains(biased)) {
                throw new IllegalArgumentException("no projection " + biased + " to carry a bias");
            }
        }
    }

    /** Refuses a size or constant (by its config.json key) that is not positive, NaN included. */
    private static void requirePositive(String key, double value) {
        if (!(value > 0)) {
            throw new IllegalArgumentException(key + " must be positive, got " + (value == Math.rint(value)
                    && Math.abs(value) < 1e15 ? String.valueOf((long) value) : String.valueOf(value)));
        }
    }

    /** Starts a config of {@code family} with the required sizes and neutral defaults for everything else. */
    public static Builder builder(ModelFamily family, int hiddenSize, int intermediateSize, int layers, int heads,
            int vocabSize) {
        return new Builder(family, hiddenSize, intermediateSize, layers, heads, vocabSize);
    }

    /** config.json's {@code model_type}. */
    public String modelType() {
        return family.modelType();
    }

    /** Width of the concatenated query heads ({@code heads * head_dim}). */
    public int queryDim() {
        return numAttentionHeads * headDim;
    }

    /** Width of the concatenated key (or value) heads ({@code kv_heads * head_dim}). */
    public int keyValueDim() {
        return numKeyValueHeads * headDim;
    }

    /**
     * What embedded rows are multiplied by: {@code sqrt(hidden_size)} with a scaled embedding (Gemma's
     * {@code embed_scale}, in float32 as a float32 model has it), else 1.
     */
    public double embeddingScale() {
        return parts.scaledEmbedding() ? Math.sqrt(hiddenSize) : 1;
    }

    /** The features of each head that RoPE rotates: {@code int(head_dim * partial_rotary_factor)}. */
    public int rotaryDim() {
        return (int) (headDim * partialRotaryFactor);
    }

    /** The attention window of layer {@code layer}, or null for full causal attention. */
    public Integer windowOf(int layer) {
        return slidingLayers.get(layer) ? slidingWindow : null;
    }

    /** The projection names of a block as in {@code model.layers.{i}.<name>.weight}, in block order. */
    public List<String> linearNames() {
        return linearNames(parts);
    }

    /**
     * The projection names of a block in the order transformers registers the modules, which is the order PEFT
     * visits them (Phi-3's attention registers {@code o_proj} before {@code qkv_proj}); otherwise {@link #linearNames}.
     */
    public List<String> registrationOrder() {
        List<String> names = new ArrayList<>(linearNames());
        if (parts.fusedQkv()) {
            names.remove("self_attn.o_proj");
            names.add(names.indexOf(QKV_PROJ), "self_attn.o_proj");
        }
        return List.copyOf(names);
    }

    private static List<String> linearNames(DecoderParts parts) {
        List<String> attention = parts.fusedQkv() ? List.of(QKV_PROJ, "self_attn.o_proj") : ATTENTION_LINEARS;
        List<String> mlp = parts.fusedGateUp() ? List.of(GATE_UP_PROJ, "mlp.down_proj") : MLP_LINEARS;
        return concat(attention, mlp);
    }

    @SafeVarargs
    private static List<String> concat(List<String>... lists) {
        List<String> names = new ArrayList<>();
        for (List<String> list : lists) {
            names.addAll(list);
        }
        return List.copyOf(names);
    }

    /** {in, out} features of the projection {@code name}. */
    public long[] inOut(String name) {
        long hidden = hiddenSize;
        if (!linearNames().contains(name)) {
            throw new IllegalArgumentException("no projection " + name + " (expected one of " + linearNames() + ")");
        }
        return switch (name) {
            case QKV_PROJ -> new long[] {hidden, queryDim() + 2L * keyValueDim()};
            case GATE_UP_PROJ -> new long[] {hidden, 2L * intermediateSize};
            case "self_attn.q_proj" -> new long[] {hidden, queryDim()};
            case "self_attn.k_proj", "self_attn.v_proj" -> new long[] {hidden, keyValueDim()};
            case "self_attn.o_proj" -> new long[] {queryDim(), hidden};
            case "mlp.gate_proj", "mlp.up_proj" -> new long[] {hidden, intermediateSize};
            case "mlp.down_proj" -> new long[] {intermediateSize, hidden};
            default -> throw new IllegalStateException("no shape for " + name);
        };
    }

    /** The norm modules of a block ({@code input_layernorm}, ...) with their weight shapes, in block order. */
    public Map<String, long[]> normShapes() {
        Map<String, long[]> norms = new LinkedHashMap<>();
        norms.put("input_layernorm", new long[] {hiddenSize});
        if (parts.qkNorm()) {
            norms.put("self_attn.q_norm", new long[] {headDim});
            norms.put("self_attn.k_norm", new long[] {headDim});
        }
        norms.put("post_attention_layernorm", new long[] {hiddenSize});
        if (parts.sandwichNorms()) {
            norms.put("pre_feedforward_layernorm", new long[] {hiddenSize});
            norms.put("post_feedforward_layernorm", new long[] {hiddenSize});
        }
        return norms;
    }

    /**
     * Every tensor of a checkpoint of this config with its shape: embed_tokens; per layer the first norm, the
     * projections (each weight {@code [out, in]}, then its bias), the other norms; the final norm; lm_head unless
     * tied. This is what a loader checks a checkpoint against and what a writer of a compatible one produces.
     */
    public Map<String, long[]> tensorShapes() {
        Map<String, long[]> shapes = new LinkedHashMap<>();
        shapes.put("model.embed_tokens.weight", new long[] {vocabSize, hiddenSize});
        for (int l = 0; l < numHiddenLayers; l++) {
            String p = "model.layers." + l + ".";
            List<Map.Entry<String, long[]>> norms = List.copyOf(normShapes().entrySet());
            shapes.put(p + norms.get(0).getKey() + ".weight", norms.get(0).getValue());
            for (String name : linearNames()) {
                long[] inOut = inOut(name);
                shapes.put(p + name + ".weight", new long[] {inOut[1], inOut[0]});
                if (biases.contains(name)) {
                    shapes.put(p + name + ".bias", new long[] {inOut[1]});
                }
            }
            for (Map.Entry<String, long[]> norm : norms.subList(1, norms.size())) {
                shapes.put(p + norm.getKey() + ".weight", norm.getValue());
            }
        }
        shapes.put("model.norm.weight", new long[] {hiddenSize});
        if (!tieWordEmbeddings) {
            shapes.put("lm_head.weight", new long[] {vocabSize, hiddenSize});
        }
        return shapes;
    }

    /** The config as config.json content, as transformers writes it for this family. */
    public ObjectNode toJson() {
        return family.toJson(this);
    }

    /** Writes {@link #toJson()} as an indented config.json. */
    public void write(Path configJson) throws IOException {
        Files.writeString(configJson, JSON.writerWithDefaultPrettyPrinter().writeValueAsString(toJson()) + "\n",
                StandardCharsets.UTF_8);
    }

    /** Builds a config in code (tests, benchmarks, families reading config.json). */
    public static final class Builder {
        private final ModelFamily family;
        private final int hiddenSize;
        private final int intermediateSize;
        private final int numHiddenLayers;
        private final int numAttentionHeads;
        private final int vocabSize;
        private int numKeyValueHeads;
        private int headDim;
        private double rmsNormEps = 1e-6;
        private double ropeTheta = 10000.0;
        private RopeScaling ropeScaling;
        private double partialRotaryFactor = 1.0;
        private int maxPositionEmbeddings = 2048;
        private Integer slidingWindow;
        private List<Boolean> slidingLayers;
        private boolean tieWordEmbeddings;
        private Set<String> biases = Set.of();
        private DecoderParts parts = DecoderParts.LLAMA;
        private Integer bosTokenId;
        private List<Integer> eosTokenIds = List.of();
        private String torchDtype;

        private Builder(ModelFamily family, int hiddenSize, int intermediateSize, int layers, int heads,
                int vocabSize) {
            this.family = family;
            this.hiddenSize = hiddenSize;
            this.intermediateSize = intermediateSize;
            this.numHiddenLayers = layers;
            this.numAttentionHeads = heads;
            this.vocabSize = vocabSize;
            this.numKeyValueHeads = heads;
            this.headDim = heads > 0 ? hiddenSize / heads : 0;
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

        /** Sets partial_rotary_factor (default 1: every feature rotates). */
        public Builder optPartialRotaryFactor(double value) {
            partialRotaryFactor = value;
            return this;
        }

        /** Sets max_position_embeddings (default 2048). */
        public Builder optMaxPositionEmbeddings(int value) {
            maxPositionEmbeddings = value;
            return this;
        }

        /** Sets the attention window; every layer slides unless {@link #optSlidingLayers} says otherwise. */
        public Builder optSlidingWindow(Integer value) {
            slidingWindow = value;
            return this;
        }

        /** Sets which layers use the sliding window (default: all when a window is set). */
        public Builder optSlidingLayers(List<Boolean> value) {
            slidingLayers = value;
            return this;
        }

        /** Sets tie_word_embeddings (default false). */
        public Builder optTieWordEmbeddings(boolean value) {
            tieWordEmbeddings = value;
            return this;
        }

        /** Sets the projections that carry a bias (default none). */
        public Builder optBiases(Set<String> value) {
            biases = value;
            return this;
        }

        /** Sets the family's block parts (default Llama's). */
        public Builder optParts(DecoderParts value) {
            parts = value;
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

        /** Sets the checkpoint dtype name (default none). */
        public Builder optTorchDtype(String value) {
            torchDtype = value;
            return this;
        }

        /** Builds the validated config. */
        public DecoderConfig build() {
            return new DecoderConfig(family, hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads,
                    numKeyValueHeads, headDim, vocabSize, rmsNormEps, ropeTheta, ropeScaling, partialRotaryFactor,
                    maxPositionEmbeddings,
                    slidingWindow, slidingLayers, tieWordEmbeddings, biases, parts, bosTokenId, eosTokenIds,
                    torchDtype);
        }
    }
}
