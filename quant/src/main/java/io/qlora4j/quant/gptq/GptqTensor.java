package io.qlora4j.quant.gptq;

import io.qlora4j.quant.QuantFormatException;

/**
 * One GPTQ linear weight as a checkpoint stores it ({@code qweight [in*bits/32, out]} int32, codes packed along
 * the input axis), with its zero-points already unpacked to their true values {@code [groups, out]}, its fp16
 * scales {@code [groups, out]} held as floats and its group index {@code [in]}. Dequantized, it is
 * {@code W[o, i] = fp16(scales[g_idx[i], o] * (q[i, o] - zeros[g_idx[i], o]))}.
 *
 * @param bits 2, 3, 4 or 8
 * @param inFeatures input width, a multiple of 32
 * @param outFeatures output width
 * @param qweight the packed codes, row-major {@code [in*bits/32, out]}
 * @param zeros the zero-point of every group and output, row-major {@code [groups, out]}
 * @param scales the scale of every group and output, row-major {@code [groups, out]}
 * @param groupIndex the group of every input column
 */
public record GptqTensor(int bits, int inFeatures, int outFeatures, int[] qweight, int[] zeros, float[] scales,
        int[] groupIndex) {

    /** Checks sizes and that every group index names a stored group. */
    public GptqTensor {
        checkBits(bits);
        if (inFeatures % 32 != 0) {
            throw new IllegalArgumentException("in_features " + inFeatures + " is not a multiple of 32");
        }
        int groups = scales.length / Math.max(1, outFeatures);
        if (qweight.length != inFeatures / 32 * bits * outFeatures || zeros.length != scales.length
                || scales.length != groups * outFeatures || groupIndex.length != inFeatures) {
            throw new IllegalArgumentException("GPTQ arrays disagree with " + inFeatures + " x " + outFeatures
                    + " at " + bits + " bits");
        }
        for (int g : groupIndex) {
            if (g < 0 || g >= groups) {
                throw new IllegalArgumentException("g_idx " + g + " outside [0, " + groups + ")");
            }
        }
    }

    private static void checkBits(int bits) {
        if (bits != 2 && bits != 3 && bits != 4 && bits != 8) {
            throw new IllegalArgumentException("GPTQ bits must be 2, 3, 4 or 8, got " + bits);
        }
    }

    /** Groups stored: rows of {@code scales}. */
    public int groups() {
        return scales.length / outFeatures;
    }

    /** The code of input row {@code i}, output {@code o}. */
    public int code(int i, int o) {
        return PackedInts.field(qweight, o, outFeatures, i, bits);
    }

    /** The dense weight {@code [out, in]} row-major, equal to the device's dequantization. */
    public float[] dequantize() {
        return HostDequant.dense(outFeatures, inFeatures, this::code, i -> groupIndex[i], zeros, scales);
    }

    /**
     * Reads a checkpoint's tensors: {@code qzeros [groups, out*bits/32]} packed along the output axis, stored as
     * {@code zero - 1} when {@code v1} ({@code checkpoint_format: gptq}) and turned into true zeros by gptqmodel's
     * rule (for 2, 4 and 8 bits one int32 add of 0x55555555, 0x11111111 or 0x01010101 per word, whose carries
     * ripple into the next field as they do in torch; for 3 bits {@code (field + 1) & 7} per field), or as
     * {@code zero} for {@code gptq_v2}.
     *
     * @param gIdx the stored {@code g_idx}, or null for {@code i / groupSize}
     * @throws QuantFormatException when a {@code g_idx} entry names no stored group
     */
    public static GptqTensor fromCheckpoint(int bits, int in, int out, int groupSize, int[] qweight, int[] qzeros,
            float[] scales, int[] gIdx, boolean v1) throws QuantFormatException {
        checkBits(bits);
        int groups = scales.length / out;
        int wordsPerRow = out * bits / 32;
        int[] words = qzeros.clone();
        if (v1 && bits != 3) {
            int add = bits == 2 ? 0x55555555 : bits == 4 ? 0x11111111 : 0x01010101;
            for (int w = 0; w < words.length; w++) {
                words[w] += add;
            }
        }
        int[] zeros = new int[groups * out];
        for (int g = 0; g < groups; g++) {
            for (int o = 0; o < out; o++) {
                int z = PackedInts.field(words, g * wordsPerRow, 1, o, bits);
                zeros[g * out + o] = v1 && bits == 3 ? (z + 1) & 7 : z;
            }
        }
        int[] index = gIdx;
        if (index == null) {
            int size = groupSize <= 0 ? in : groupSize;
            index = new int[in];
            for (int i = 0; i < in; i++) {
                index[i] = i / size;
            }
        }
        for (int i = 0; i < index.length; i++) {
            if (index[i] < 0 || index[i] >= groups) {
                throw new QuantFormatException("g_idx[" + i + "] = " + index[i] + " names no group (the checkpoint has "
                        + groups + ")");
            }
        }
        return new GptqTensor(bits, in, out, qweight, zeros, scales, index);
    }
}
