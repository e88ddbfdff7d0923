package io.qlora4j.model.decoder;

import java.util.List;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * How RoPE frequencies are stretched beyond the pre-training context, as transformers' {@code rope_type}
 * values {@code linear}, {@code dynamic}, {@code llama3} and {@code longrope} define it ({@code default} is no
 * scaling and is represented by a {@code null} {@code RopeScaling}).
 *
 * @param type the scaling rule
 * @param factor the context stretch factor (longrope: the rope {@code factor}, else
 *     {@code max_position_embeddings / original_max_position_embeddings})
 * @param lowFreqFactor llama3 only: wavelengths above {@code original / lowFreqFactor} are divided by factor
 * @param highFreqFactor llama3 only: wavelengths below {@code original / highFreqFactor} are kept
 * @param originalMaxPositionEmbeddings llama3 and longrope: the pre-training context length
 * @param shortFactor longrope only: the per-frequency divisors while the call's positions stay within the
 *     original context ({@code rotary_dim / 2} entries; empty for other types)
 * @param longFactor longrope only: the divisors once a position reaches beyond it
 * @param attentionFactor longrope only: what cos and sin are multiplied by (1 for other types)
 */
public record RopeScaling(
        Type type,
        double factor,
        double lowFreqFactor,
        double highFreqFactor,
        int originalMaxPositionEmbeddings,
        List<Double> shortFactor,
        List<Double> longFactor,
        double attentionFactor) {

    /** The supported {@code rope_type} values other than {@code default}. */
    public enum Type {
        /** Positions divided by {@code factor}. */
        LINEAR,
        /** Dynamic NTK: theta grows once the sequence is longer than max_position_embeddings. */
        DYNAMIC,
        /** Llama 3.1: per-frequency blend between scaled and unscaled frequencies. */
        LLAMA3,
        /** Phi-3's LongRoPE: per-frequency divisors, short or long by the call's length, and a cos/sin factor. */
        LONGROPE;

        /** The name used in config.json. */
        public String jsonName() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /** Validates the parameters of the chosen type. */
    public RopeScaling {
        if (type == null) {
            throw new IllegalArgumentException("rope scaling type is required");
        }
        if (!(factor > 0)) {
            throw new IllegalArgumentException("rope scaling factor must be positive, got " + factor);
        }
        if (type == Type.LLAMA3
                && (!(highFreqFactor > lowFreqFactor) || !(lowFreqFactor > 0) || originalMaxPositionEmbeddings <= 0)) {
            throw new IllegalArgumentException("llama3 rope scaling needs 0 < low_freq_factor < high_freq_factor"
                    + " and original_max_position_embeddings > 0");
        }
        shortFactor = List.copyOf(shortFactor);
        longFactor = List.copyOf(longFactor);
        if (type == Type.LONGROPE) {
            if (originalMaxPositionEmbeddings <= 0 || !(attentionFactor > 0)) {
                throw new IllegalArgumentException("longrope needs original_max_position_embeddings > 0 and a positive"
                        + " attention_factor");
            }
            if (shortFactor.size() != longFactor.size() || shortFactor.isEmpty()) {
                throw new IllegalArgumentException("longrope short_factor and long_factor must have the same, non-zero"
                        + " length, got " + shortFactor.size() + " and " + longFactor.size());
            }
            for (double f : concat(shortFactor, longFactor)) {
                if (!(f > 0) || Double.isInfinite(f)) {
                    throw new IllegalArgumentException("longrope factors must be positive, got " + f);
                }
            }
        }
    }

    /**
     * Whether the keys of a cache holding {@code cached} tokens were rotated with other frequencies than a call
     * reaching {@code total} tokens rotates with, so that the whole sequence must be run again: longrope's first call
     * beyond its original context, which switches from the short factors to the long ones. transformers'
     * {@code Phi3ForCausalLM.prepare_inputs_for_generation} drops the cache then for the same reason (its stale-cache
     * fix, transformers PR 33129); the other types rotate a cached position alike whatever the call (dynamic NTK
     * keeps the keys rotated with the theta of their own call, in transformers as here).
     */
    public boolean invalidatesCache(long cached, long total) {
        return type == Type.LONGROPE && cached > 0 && cached <= originalMaxPositionEmbeddings
                && total > originalMaxPositionEmbeddings;
    }

    private static List<Double> concat(List<Double> a, List<Double> b) {
        return Stream.concat(a.stream(), b.stream()).toList();
    }

    /** Linear scaling (positions / factor). */
    public static RopeScaling linear(double factor) {
        return new RopeScaling(Type.LINEAR, factor, 0, 0, 0, List.of(), List.of(), 1);
    }

    /** Dynamic NTK scaling. */
    public static RopeScaling dynamic(double factor) {
        return new RopeScaling(Type.DYNAMIC, factor, 0, 0, 0, List.of(), List.of(), 1);
    }

    /** Llama 3.1 scaling. */
    public static RopeScaling llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMax) {
        return new RopeScaling(Type.LLAMA3, factor, lowFreqFactor, highFreqFactor, originalMax, List.of(), List.of(),
                1);
    }

    /**
     * LongRoPE as transformers' {@code _compute_longrope_parameters} resolves it: {@code attentionFactor} null means
     * {@code sqrt(1 + ln(factor) / ln(originalMax))} when {@code factor > 1}, else 1.
     */
    public static RopeScaling longrope(double factor, int originalMax, List<Double> shortFactor,
            List<Double> longFactor, Double attentionFactor) {
        double attention = attentionFactor != null ? attentionFactor
                : factor <= 1 ? 1 : Math.sqrt(1 + Math.log(factor) / Math.log(originalMax));
        return new RopeScaling(Type.LONGROPE, factor, 0, 0, originalMax, shortFactor, longFactor, attention);
    }
}
