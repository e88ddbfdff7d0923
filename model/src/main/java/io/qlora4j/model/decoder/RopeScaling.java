package io.qlora4j.model.decoder;

import java.util.Locale;

/**
 * How RoPE frequencies are stretched beyond the pre-training context, as transformers' {@code rope_type}
 * values {@code linear}, {@code dynamic} and {@code llama3} define it ({@code default} is no scaling and is
 * represented by a {@code null} {@code RopeScaling}).
 *
 * @param type the scaling rule
 * @param factor the context stretch factor (all types)
 * @param lowFreqFactor llama3 only: wavelengths above {@code original / lowFreqFactor} are divided by factor
 * @param highFreqFactor llama3 only: wavelengths below {@code original / highFreqFactor} are kept
 * @param originalMaxPositionEmbeddings llama3 only: the pre-training context length
 */
public record RopeScaling(
        Type type,
        double factor,
        double lowFreqFactor,
        double highFreqFactor,
        int originalMaxPositionEmbeddings) {

    /** The supported {@code rope_type} values other than {@code default}. */
    public enum Type {
        /** Positions divided by {@code factor}. */
        LINEAR,
        /** Dynamic NTK: theta grows once the sequence is longer than max_position_embeddings. */
        DYNAMIC,
        /** Llama 3.1: per-frequency blend between scaled and unscaled frequencies. */
        LLAMA3;

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
    }

    /** Linear scaling (positions / factor). */
    public static RopeScaling linear(double factor) {
        return new RopeScaling(Type.LINEAR, factor, 0, 0, 0);
    }

    /** Dynamic NTK scaling. */
    public static RopeScaling dynamic(double factor) {
        return new RopeScaling(Type.DYNAMIC, factor, 0, 0, 0);
    }

    /** Llama 3.1 scaling. */
    public static RopeScaling llama3(double factor, double lowFreqFactor, double highFreqFactor, int originalMax) {
        return new RopeScaling(Type.LLAMA3, factor, lowFreqFactor, highFreqFactor, originalMax);
    }
}
