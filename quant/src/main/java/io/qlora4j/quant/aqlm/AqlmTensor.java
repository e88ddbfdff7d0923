package io.qlora4j.quant.aqlm;

import java.util.Arrays;

/**
 * One AQLM-quantized linear weight {@code [out, in]} on the host, in the layout of the Hugging Face checkpoint:
 * {@code codes [out/og, in/ig, K]} (unsigned, row-major), {@code codebooks [K, 2^nbits, og, ig]} and
 * {@code scales [out/og]} (fp16 values held as floats). The weight it stands for is
 * {@code W[o*og + a, i*ig + b] = scales[o] * sum_k codebooks[k, codes[o, i, k], a, b]}. Arrays are held, not
 * copied; treat them as read-only.
 *
 * @param scheme the codebook count, code width and group sizes
 * @param outFeatures rows of the weight
 * @param inFeatures columns of the weight
 * @param codes one unsigned code per output group, input group and codebook
 * @param codebooks every codebook's entries
 * @param scales one scale per output group
 */
public record AqlmTensor(AqlmScheme scheme, long outFeatures, long inFeatures, int[] codes, float[] codebooks,
        float[] scales) {

    /** Checks that the arrays fit the scheme and shape, and every code the codebook size. */
    public AqlmTensor {
        String problem = scheme.shapeProblem(outFeatures, inFeatures);
        if (problem != null) {
            throw new IllegalArgumentException(problem);
        }
        long groups = outGroups(scheme, outFeatures) * (inFeatures / scheme.inGroupSize());
        require(codes.length == groups * scheme.numCodebooks(), "codes", codes.length, groups * scheme.numCodebooks());
        long entries = (long) scheme.numCodebooks() * scheme.codebookSize() * scheme.groupSize();
        require(codebooks.length == entries, "codebooks", codebooks.length, entries);
        require(scales.length == outGroups(scheme, outFeatures), "scales", scales.length, outGroups(scheme, outFeatures));
        for (int i = 0; i < codes.length; i++) {
            if (codes[i] < 0 || codes[i] >= scheme.codebookSize()) {
                throw new IllegalArgumentException("code " + codes[i] + " at " + i + " is outside [0, "
                        + scheme.codebookSize() + ")");
            }
        }
    }

    private static long outGroups(AqlmScheme scheme, long out) {
        return out / scheme.outGroupSize();
    }

    private static void require(boolean ok, String what, long got, long expected) {
        if (!ok) {
            throw new IllegalArgumentException(what + " has " + got + " values, expected " + expected);
        }
    }

    /** The shape of {@code codes}: {@code [out/og, in/ig, K]}. */
    public long[] codesShape() {
        return new long[] {outFeatures / scheme.outGroupSize(), inFeatures / scheme.inGroupSize(),
            scheme.numCodebooks()};
    }

    /** The shape of {@code codebooks}: {@code [K, 2^nbits, og, ig]}. */
    public long[] codebooksShape() {
        return new long[] {scheme.numCodebooks(), scheme.codebookSize(), scheme.outGroupSize(), scheme.inGroupSize()};
    }

    /** The shape of {@code scales} as the checkpoint stores it: {@code [out/og, 1, 1, 1]}. */
    public long[] scalesShape() {
        return new long[] {outFeatures / scheme.outGroupSize(), 1, 1, 1};
    }

    /**
     * The dense weight {@code [out, in]} row-major in float32: per group the codebook entries summed in codebook
     * order, then times the scale, the same operations in the same order as the device decode.
     */
    public float[] decode() {
        int k = scheme.numCodebooks();
        int og = scheme.outGroupSize();
        int ig = scheme.inGroupSize();
        int size = scheme.codebookSize();
        int gs = scheme.groupSize();
        int outGroups = Math.toIntExact(outFeatures / og);
        int inGroups = Math.toIntExact(inFeatures / ig);
        int in = Math.toIntExact(inFeatures);
        float[] w = new float[Math.toIntExact(outFeatures * inFeatures)];
        float[] acc = new float[gs];
        for (int o = 0; o < outGroups; o++) {
            for (int i = 0; i < inGroups; i++) {
                int codeBase = (o * inGroups + i) * k;
                for (int c = 0; c < k; c++) {
                    int entry = (c * size + codes[codeBase + c]) * gs;
                    for (int e = 0; e < gs; e++) {
                        acc[e] = c == 0 ? codebooks[entry + e] : acc[e] + codebooks[entry + e];
                    }
                }
                for (int a = 0; a < og; a++) {
                    for (int b = 0; b < ig; b++) {
                        w[(o * og + a) * in + i * ig + b] = acc[a * ig + b] * scales[o];
                    }
                }
            }
        }
        return w;
    }

    /** Bits per weight as {@link AqlmScheme#bitsPerParameter} counts them. */
    public double bitsPerParameter() {
        return scheme.bitsPerParameter(outFeatures, inFeatures);
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof AqlmTensor t && scheme.equals(t.scheme) && outFeatures == t.outFeatures
                && inFeatures == t.inFeatures && Arrays.equals(codes, t.codes) && Arrays.equals(codebooks, t.codebooks)
                && Arrays.equals(scales, t.scales);
    }

    @Override
    public int hashCode() {
        int h = scheme.hashCode();
        h = 31 * h + Long.hashCode(outFeatures);
        h = 31 * h + Long.hashCode(inFeatures);
        h = 31 * h + Arrays.hashCode(codes);
        h = 31 * h + Arrays.hashCode(codebooks);
        return 31 * h + Arrays.hashCode(scales);
    }

    @Override
    public String toString() {
        return "AqlmTensor[" + scheme + ", " + outFeatures + " x " + inFeatures + "]";
    }
}
