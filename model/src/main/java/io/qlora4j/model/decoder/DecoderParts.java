package io.qlora4j.model.decoder;

/**
 * The pieces of a decoder that differ between families, each chosen by the family's config reading: the norm
 * flavour and the MLP activation.
 *
 * @param norm how every RMSNorm applies its weight
 * @param activation the MLP's gate activation
 */
public record DecoderParts(RmsNorm norm, MlpActivation activation) {
    /** Llama's parts: {@code x * w} RMSNorm, SiLU. */
    public static final DecoderParts LLAMA = new DecoderParts(RmsNorm.WEIGHTED, MlpActivation.SILU);

    /** Checks that every part is set. */
    public DecoderParts {
        if (norm == null || activation == null) {
            throw new IllegalArgumentException("every decoder part must be set");
        }
    }
}
