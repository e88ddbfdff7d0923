package io.qlora4j.model.decoder;

/**
 * The pieces of a decoder that differ between families, each chosen by the family's config reading (never by its
 * name) and each one a transformers module or option:
 *
 * @param norm how every RMSNorm applies its weight ({@code x * w}, or Gemma's {@code x * (1 + w)} in float32)
 * @param activation the MLP's gate activation ({@code hidden_act})
 * @param fusedQkv q, k and v come from one {@code self_attn.qkv_proj} whose rows are q, then k, then v (Phi-3)
 * @param fusedGateUp gate and up come from one {@code mlp.gate_up_proj}, gate in the first half of its rows (Phi-3)
 * @param qkNorm queries and keys pass a per-head RMSNorm ({@code self_attn.q_norm}, {@code k_norm}, {@code [head_dim]})
 *     before RoPE (Qwen3)
 * @param sandwichNorms the block normalizes the attention and MLP outputs too: {@code post_attention_layernorm} on
 *     the attention output, {@code pre_feedforward_layernorm} before and {@code post_feedforward_layernorm} after the
 *     MLP (Gemma 2)
 * @param queryPreAttnScalar scores are scaled by {@code queryPreAttnScalar^-0.5} instead of {@code head_dim^-0.5}
 *     (Gemma 2), or null
 * @param attnLogitSoftcapping attention scores become {@code tanh(s / c) * c} before the mask (Gemma 2), or null
 * @param finalLogitSoftcapping logits become {@code tanh(z / c) * c} (Gemma 2), or null
 * @param scaledEmbedding embeddings are multiplied by {@code sqrt(hidden_size)}, rounded to the compute dtype (Gemma)
 */
public record DecoderParts(
        RmsNorm norm,
        MlpActivation activation,
        boolean fusedQkv,
        boolean fusedGateUp,
        boolean qkNorm,
        boolean sandwichNorms,
        Double queryPreAttnScalar,
        Double attnLogitSoftcapping,
        Double finalLogitSoftcapping,
        boolean scaledEmbedding) {

    /** Llama's parts: {@code x * w} RMSNorm, SiLU, separate projections, nothing else. */
    public static final DecoderParts LLAMA = builder().build();

    /** Checks that the norm and activation are set and every scalar is positive. */
    public DecoderParts {
        if (norm == null || activation == null) {
            throw new IllegalArgumentException("the norm and the activation must be set");
        }
        for (Double value : new Double[] {queryPreAttnScalar, attnLogitSoftcapping, finalLogitSoftcapping}) {
            if (value != null && !(value > 0 && !value.isInfinite())) {
                throw new IllegalArgumentException("query_pre_attn_scalar and soft-capping values must be positive,"
                        + " got " + value);
            }
        }
    }

    /** Starts from Llama's parts. */
    public static Builder builder() {
        return new Builder();
    }

    /** Builds the parts; every setter defaults to Llama's choice. */
    public static final class Builder {
        private RmsNorm norm = RmsNorm.WEIGHTED;
        private MlpActivation activation = MlpActivation.SILU;
        private boolean fusedQkv;
        private boolean fusedGateUp;
        private boolean qkNorm;
        private boolean sandwichNorms;
        private Double queryPreAttnScalar;
        private Double attnLogitSoftcapping;
        private Double finalLogitSoftcapping;
        private boolean scaledEmbedding;

        private Builder() {}

        /** Sets the RMSNorm flavour (default {@link RmsNorm#WEIGHTED}). */
        public Builder optNorm(RmsNorm value) {
            norm = value;
            return this;
        }

        /** Sets the MLP activation (default SiLU). */
        public Builder optActivation(MlpActivation value) {
            activation = value;
            return this;
        }

        /** Fuses q, k and v into {@code self_attn.qkv_proj} (default false). */
        public Builder optFusedQkv(boolean value) {
            fusedQkv = value;
            return this;
        }

        /** Fuses gate and up into {@code mlp.gate_up_proj} (default false). */
        public Builder optFusedGateUp(boolean value) {
            fusedGateUp = value;
            return this;
        }

        /** Adds the per-head q/k RMSNorm before RoPE (default false). */
        public Builder optQkNorm(boolean value) {
            qkNorm = value;
            return this;
        }

        /** Adds Gemma 2's norms around the attention and MLP outputs (default false). */
        public Builder optSandwichNorms(boolean value) {
            sandwichNorms = value;
            return this;
        }

        /** Sets query_pre_attn_scalar (default null: scores scaled by head_dim^-0.5). */
        public Builder optQueryPreAttnScalar(Double value) {
            queryPreAttnScalar = value;
            return this;
        }

        /** Sets attn_logit_softcapping (default null: none). */
        public Builder optAttnLogitSoftcapping(Double value) {
            attnLogitSoftcapping = value;
            return this;
        }

        /** Sets final_logit_softcapping (default null: none). */
        public Builder optFinalLogitSoftcapping(Double value) {
            finalLogitSoftcapping = value;
            return this;
        }

        /** Scales embeddings by sqrt(hidden_size) (default false). */
        public Builder optScaledEmbedding(boolean value) {
            scaledEmbedding = value;
            return this;
        }

        /** Builds the validated parts. */
        public DecoderParts build() {
            return new DecoderParts(norm, activation, fusedQkv, fusedGateUp, qkNorm, sandwichNorms,
                    queryPreAttnScalar, attnLogitSoftcapping, finalLogitSoftcapping, scaledEmbedding);
        }
    }
}
