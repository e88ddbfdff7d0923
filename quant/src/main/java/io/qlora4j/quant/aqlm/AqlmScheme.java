package io.qlora4j.quant.aqlm;

import java.util.Locale;

/**
 * An AQLM scheme, the four numbers of a {@code quantization_config} with {@code quant_method: aqlm}: {@code K}
 * additive codebooks of {@code 2^nbits} entries each, every entry an {@code outGroupSize x inGroupSize} block of
 * weights. The published schemes are 1x16 g8 (about 2 bits per weight), 2x8 g8 (2), 1x16 g16 (1) and 1x8 g8 (1).
 *
 * @param numCodebooks K, at least 1
 * @param nbitsPerCodebook bits of one code, 1 to 16 (codes are stored as int8 up to 8 bits, else int16)
 * @param inGroupSize consecutive input columns one code covers
 * @param outGroupSize consecutive output rows one code covers (1 in every published model)
 */
public record AqlmScheme(int numCodebooks, int nbitsPerCodebook, int inGroupSize, int outGroupSize) {

    /** Checks the ranges. */
    public AqlmScheme {
        if (numCodebooks < 1 || inGroupSize < 1 || outGroupSize < 1) {
            throw new IllegalArgumentException("num_codebooks, in_group_size and out_group_size must be at least 1, got "
                    + numCodebooks + ", " + inGroupSize + ", " + outGroupSize);
        }
        if (nbitsPerCodebook < 1 || nbitsPerCodebook > 16) {
            throw new IllegalArgumentException("nbits_per_codebook must be 1 to 16, got " + nbitsPerCodebook);
        }
    }

    /** Entries per codebook, {@code 2^nbits}. */
    public int codebookSize() {
        return 1 << nbitsPerCodebook;
    }

    /** Weights one code group covers, {@code outGroupSize * inGroupSize}. */
    public int groupSize() {
        return outGroupSize * inGroupSize;
    }

    /** Bits of the integer type the codes are stored in: 8 (int8) up to 8 bits per code, else 16 (int16). */
    public int storageBits() {
        return nbitsPerCodebook <= 8 ? 8 : 16;
    }

    /**
     * Whether an {@code [out, in]} weight splits into whole groups; null when it does, else what is wrong.
     */
    public String shapeProblem(long out, long in) {
        if (in % inGroupSize != 0) {
            return "in_features " + in + " is not a multiple of in_group_size " + inGroupSize;
        }
        if (out % outGroupSize != 0) {
            return "out_features " + out + " is not a multiple of out_group_size " + outGroupSize;
        }
        return null;
    }

    /**
     * Bits per weight of an {@code [out, in]} layer, as {@code aqlm}'s {@code estimate_nbits_per_parameter}
     * counts them: the codes, the fp16 codebooks and one fp16 scale per output group (a bias is not counted).
     */
    public double bitsPerParameter(long out, long in) {
        double params = (double) out * in;
        double codes = params / groupSize() * numCodebooks * nbitsPerCodebook;
        double codebooks = (double) numCodebooks * codebookSize() * groupSize() * 16;
        double scales = (double) (out / outGroupSize) * 16;
        return (codes + codebooks + scales) / params;
    }

    /** {@code "2x8 g8"}, the way the AQLM repository names its models ({@code "2x8 g8 og2"} with output groups). */
    @Override
    public String toString() {
        return String.format(Locale.ROOT, "%dx%d g%d%s", numCodebooks, nbitsPerCodebook, inGroupSize,
                outGroupSize == 1 ? "" : " og" + outGroupSize);
    }
}
