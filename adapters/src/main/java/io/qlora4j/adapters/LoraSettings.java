package io.qlora4j.adapters;

import io.qlora4j.model.decoder.DecoderConfig;
import java.util.List;
import java.util.Objects;

/**
 * The hyper-parameters of a LoRA adapter, named as LLaMA-Factory names them ({@code lora_rank},
 * {@code lora_alpha}, {@code lora_dropout}, {@code use_rslora}, {@code lora_target}, {@code use_dora},
 * {@code pissa_init}, {@code loftq_init}).
 *
 * @param rank the inner dimension r of {@code A [r, in]} and {@code B [out, r]}
 * @param alpha the numerator of the scaling
 * @param dropout the probability of zeroing an input element of the LoRA path while training, in [0, 1)
 * @param useRslora rank-stabilised scaling {@code alpha / sqrt(r)} instead of {@code alpha / r}
 * @param targets {@code ["all"]} (every linear layer of every block, never lm_head) or module names such as
 *     {@code q_proj} or {@code self_attn.q_proj}
 * @param variant how the adapted layers compute (plain LoRA, DoRA, ...)
 * @param init how the adapter starts (LoRA's, PiSSA, LoftQ), PEFT's {@code init_lora_weights}
 */
public record LoraSettings(int rank, double alpha, double dropout, boolean useRslora, List<String> targets,
        AdapterVariant variant, AdapterInit init) {

    /** Checks the ranges and the target names (an unknown name is an error listing the valid ones). */
    public LoraSettings {
        if (rank <= 0) {
            throw new IllegalArgumentException("lora_rank must be positive, got " + rank);
        }
        if (!(alpha > 0) || Double.isInfinite(alpha)) {
            throw new IllegalArgumentException("lora_alpha must be a positive number, got " + alpha);
        }
        if (!(dropout >= 0 && dropout < 1)) {
            throw new IllegalArgumentException("lora_dropout must be in [0, 1), got " + dropout);
        }
        Objects.requireNonNull(variant, "variant");
        Objects.requireNonNull(init, "init");
        targets = List.copyOf(targets);
        TargetModules.checkKnown(targets);
    }

    /** Plain LoRA with LoRA's start and these settings. */
    public LoraSettings(int rank, double alpha, double dropout, boolean useRslora, List<String> targets) {
        this(rank, alpha, dropout, useRslora, targets, AdapterVariants.lora(), AdapterInits.lora());
    }

    /**
     * The block projections of {@code config} ({@code self_attn.q_proj}, ...) that {@link #targets} selects, in block
     * order.
     *
     * @throws IllegalArgumentException for a name this family's block lacks
     */
    public List<String> linearNames(DecoderConfig config) {
        return TargetModules.linearNames(config, targets);
    }

    /** LLaMA-Factory's defaults for a rank: alpha {@code 2 * rank}, no dropout, plain scaling, all linear layers. */
    public static LoraSettings defaults(int rank) {
        return new LoraSettings(rank, 2.0 * rank, 0.0, false, List.of(TargetModules.ALL));
    }

    /** These settings computing as {@code value}. */
    public LoraSettings withVariant(AdapterVariant value) {
        return new LoraSettings(rank, alpha, dropout, useRslora, targets, value, init);
    }

    /** These settings starting as {@code value}. */
    public LoraSettings withInit(AdapterInit value) {
        return new LoraSettings(rank, alpha, dropout, useRslora, targets, variant, value);
    }

    /** The factor of the LoRA path: {@code alpha / rank}, or {@code alpha / sqrt(rank)} with rsLoRA. */
    public double scaling() {
        return useRslora ? alpha / Math.sqrt(rank) : alpha / rank;
    }
}
