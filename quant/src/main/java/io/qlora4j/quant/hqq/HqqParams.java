package io.qlora4j.quant.hqq;

import java.util.List;

/**
 * HQQ's {@code weight_quant_params} (always channel-wise, never viewed as float): the code width, the group size,
 * the axis the groups run along, whether the zero points are refined by the proximal solver, and whether the
 * initial zero is rounded. Axis 0 groups {@code groupSize} elements spaced {@code numel / groupSize} apart in the
 * row-major weight (for a {@code [out, in]} weight: one input column, output rows strided by
 * {@code out / groupSize}); axis 1 groups {@code groupSize} consecutive elements of a row.
 *
 * @param nbits 1, 2, 3, 4, 5, 6 or 8
 * @param groupSize elements per group, a positive multiple of 8
 * @param axis 0 or 1
 * @param optimize whether the half-quadratic solver refines the zero points
 * @param roundZero whether the initial zero point is rounded to an integer
 */
public record HqqParams(int nbits, int groupSize, int axis, boolean optimize, boolean roundZero) {
    /** The code widths HQQ supports (its 1.58-bit ternary mode aside). */
    public static final List<Integer> BITS = List.of(1, 2, 3, 4, 5, 6, 8);

    /** The group size LLaMA-Factory's {@code HqqConfig} leaves at its default. */
    public static final int DEFAULT_GROUP_SIZE = 64;

    /** Validates the values, naming the one at fault. */
    public HqqParams {
        if (!BITS.contains(nbits)) {
            throw new IllegalArgumentException("HQQ does not support " + nbits + "-bit codes; expected one of " + BITS);
        }
        if (groupSize <= 0 || groupSize % 8 != 0) {
            throw new IllegalArgumentException("HQQ group size must be a positive multiple of 8, got " + groupSize);
        }
        if (axis != 0 && axis != 1) {
            throw new IllegalArgumentException("HQQ axis must be 0 or 1, got " + axis);
        }
    }

    /**
     * What LLaMA-Factory builds for {@code quantization_method: hqq} ({@code HqqConfig(nbits=b, axis=0)}):
     * groups of 64 along axis 0, the solver on, the zero rounded only at 4 bits.
     */
    public static HqqParams llamaFactory(int nbits) {
        return new HqqParams(nbits, DEFAULT_GROUP_SIZE, 0, true, nbits == 4);
    }

    /** These parameters with another group size. */
    public HqqParams withGroupSize(int size) {
        return new HqqParams(nbits, size, axis, optimize, roundZero);
    }

    /** The packing of this code width. */
    public HqqPacking packing() {
        return HqqPacking.forBits(nbits);
    }

    /** The largest code, {@code 2^nbits - 1}. */
    public int maxCode() {
        return (1 << nbits) - 1;
    }
}
