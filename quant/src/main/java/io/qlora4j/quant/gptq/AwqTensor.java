package io.qlora4j.quant.gptq;

/**
 * One AWQ GEMM linear weight as AutoAWQ stores it: {@code qweight [in, out/8]} int32 whose nibble {@code k} of
 * word {@code c} holds output column {@code 8c + [0,2,4,6,1,3,5,7][k]}, zero-points unpacked from {@code qzeros}
 * (same order, stored as they are, 0 to 15), fp16 {@code scales [in/groupSize, out]} held as floats. Input row
 * {@code i} belongs to group {@code i / groupSize}; {@code W[o, i] = fp16(scales[g, o] * (q[i, o] - zeros[g, o]))}.
 *
 * @param inFeatures input width, a multiple of the group size
 * @param outFeatures output width, a multiple of 8
 * @param groupSize input rows per group
 * @param qweight the packed codes, row-major {@code [in, out/8]}
 * @param zeros the zero of every group and output, row-major {@code [in/groupSize, out]}
 * @param scales the scale of every group and output, row-major {@code [in/groupSize, out]}
 */
public record AwqTensor(int inFeatures, int outFeatures, int groupSize, int[] qweight, int[] zeros, float[] scales) {

    /** Column {@code 8c + j} lives in nibble {@code REVERSE_ORDER[j]} of word {@code c}. */
    static final int[] REVERSE_ORDER = {0, 4, 1, 5, 2, 6, 3, 7};

    /** Checks sizes. */
    public AwqTensor {
        if (outFeatures % 8 != 0 || groupSize < 1 || inFeatures % groupSize != 0) {
            throw new IllegalArgumentException("AWQ needs out_features a multiple of 8 and in_features a multiple of "
                    + "the group size, got " + inFeatures + " x " + outFeatures + " in groups of " + groupSize);
        }
        int groups = inFeatures / groupSize;
        if (qweight.length != inFeatures * outFeatures / 8 || zeros.length != groups * outFeatures
                || scales.length != groups * outFeatures) {
            throw new IllegalArgumentException("AWQ arrays disagree with " + inFeatures + " x " + outFeatures);
        }
    }

    /** The 4-bit value of column {@code col} in a row of words starting at {@code words[start]}. */
    static int nibble(int[] words, int start, int col) {
        return (words[start + col / 8] >>> (4 * REVERSE_ORDER[col % 8])) & 15;
    }

    /** The code of input row {@code i}, output {@code o}. */
    public int code(int i, int o) {
        return nibble(qweight, i * (outFeatures / 8), o);
    }

    /** The dense weight {@code [out, in]} row-major, equal to the device's dequantization. */
    public float[] dequantize() {
        return HostDequant.dense(outFeatures, inFeatures, this::code, i -> i / groupSize, zeros, scales);
    }

    /** Reads a checkpoint's tensors, unpacking {@code qzeros [in/groupSize, out/8]}. */
    public static AwqTensor fromCheckpoint(int in, int out, int groupSize, int[] qweight, int[] qzeros,
            float[] scales) {
        int groups = in / groupSize;
        int[] zeros = new int[groups * out];
        for (int g = 0; g < groups; g++) {
            for (int o = 0; o < out; o++) {
                zeros[g * out + o] = nibble(qzeros, g * (out / 8), o);
            }
        }
        return new AwqTensor(in, out, groupSize, qweight, zeros, scales);
    }
}
