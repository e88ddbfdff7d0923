package io.qlora4j.quant;

import java.util.Arrays;
import java.util.Objects;

/**
 * Double-quantized block scales (bitsandbytes {@code compress_statistics=True}): one 8-bit code per
 * 4-bit block against the signed dynamic map, a float32 absmax per {@code nestedBlocksize} codes,
 * and the float32 mean subtracted before coding. Arrays are held, not copied (they can be large);
 * treat them as read-only.
 *
 * @param codes one code per 4-bit block ({@code absmax} in a bitsandbytes state dict, U8)
 * @param nestedAbsmax one float32 scale per {@code nestedBlocksize} codes ({@code nested_absmax})
 * @param offset the mean of the original absmax values ({@code nested_offset})
 * @param nestedBlocksize codes per nested block, 256 in bitsandbytes
 * @param nestedMap the 256-entry map the codes index ({@code nested_quant_map})
 */
public record DoubleQuantizedScales(
        byte[] codes, float[] nestedAbsmax, float offset, int nestedBlocksize, float[] nestedMap) {

    /** Validates the array sizes against each other. */
    public DoubleQuantizedScales {
        Objects.requireNonNull(codes, "codes");
        Objects.requireNonNull(nestedAbsmax, "nestedAbsmax");
        Objects.requireNonNull(nestedMap, "nestedMap");
        if (nestedBlocksize <= 0) {
            throw new IllegalArgumentException("nested blocksize must be positive, got " + nestedBlocksize);
        }
        if (nestedMap.length != 256) {
            throw new IllegalArgumentException(
                    "nested quant map has " + nestedMap.length + " entries, expected 256");
        }
        long expectedNested = ((long) codes.length + nestedBlocksize - 1) / nestedBlocksize;
        if (nestedAbsmax.length != expectedNested) {
            throw new IllegalArgumentException("nested absmax has " + nestedAbsmax.length
                    + " entries, expected " + expectedNested + " for " + codes.length
                    + " codes in blocks of " + nestedBlocksize);
        }
    }

    /**
     * The float32 block scales: {@code nestedMap[code_i] * nestedAbsmax[i / nestedBlocksize] +
     * offset}, rounded after the multiply and after the add, as bitsandbytes computes them.
     */
    public float[] decode() {
        float[] out = new float[codes.length];
        for (int i = 0; i < out.length; i++) {
            out[i] = decodeOne(i);
        }
        return out;
    }

    /** The scale of block {@code i}. */
    float decodeOne(int i) {
        return decode(nestedMap, codes[i], nestedAbsmax[i / nestedBlocksize], offset);
    }

    /**
     * One block's scale from its {@code code}, its nested block's {@code nestedAbsmax} and the {@code offset}: the
     * multiply and the add each rounded to float32 ({@link #decode()}).
     */
    static float decode(float[] nestedMap, byte code, float nestedAbsmax, float offset) {
        float scaled = nestedMap[code & 0xFF] * nestedAbsmax;
        return scaled + offset;
    }

    /** Stored size: one byte per code plus a float32 per nested block (map and offset excluded). */
    long bytes() {
        return codes.length + 4L * nestedAbsmax.length;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof DoubleQuantizedScales d
                && Arrays.equals(codes, d.codes)
                && Arrays.equals(nestedAbsmax, d.nestedAbsmax)
                && Float.floatToIntBits(offset) == Float.floatToIntBits(d.offset)
                && nestedBlocksize == d.nestedBlocksize
                && Arrays.equals(nestedMap, d.nestedMap);
    }

    @Override
    public int hashCode() {
        int h = Arrays.hashCode(codes);
        h = 31 * h + Arrays.hashCode(nestedAbsmax);
        h = 31 * h + Float.hashCode(offset);
        h = 31 * h + nestedBlocksize;
        return 31 * h + Arrays.hashCode(nestedMap);
    }

    @Override
    public String toString() {
        return "DoubleQuantizedScales[" + codes.length + " codes, " + nestedAbsmax.length
                + " nested blocks of " + nestedBlocksize + ", offset=" + offset + "]";
    }
}
