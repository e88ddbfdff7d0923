package io.qlora4j.quant;

import java.util.Arrays;
import java.util.Locale;
import java.util.Objects;

/**
 * A 4-bit blockwise-quantized tensor in bitsandbytes' layout: codes packed two per byte (first
 * element in the high nibble), one scale per block, either float32 ({@code absmax}) or double
 * quantized ({@code doubleQuant}); exactly one of the two is non-null. Arrays are held, not copied
 * (the packed codes of one weight can be hundreds of MB); treat them as read-only.
 *
 * @param type NF4 or FP4
 * @param shape the original shape, row-major
 * @param blocksize elements per block, 32, 64, 128, 256, 512, 1024, 2048 or 4096
 * @param packed {@code (numel + 1) / 2} bytes of packed codes
 * @param absmax one float32 scale per block, or null when double-quantized
 * @param doubleQuant the double-quantized scales, or null when {@code absmax} is given
 */
public record QuantizedTensor(
        QuantType type, long[] shape, int blocksize, byte[] packed, float[] absmax,
        DoubleQuantizedScales doubleQuant) {

    /** Validates sizes: packed length, scale count and that exactly one scale form is present. */
    public QuantizedTensor {
        Objects.requireNonNull(type, "type");
        Objects.requireNonNull(shape, "shape");
        Objects.requireNonNull(packed, "packed");
        BlockwiseQuantizer.checkBlocksize(blocksize);
        long n = numel(shape);
        if (packed.length != (n + 1) / 2) {
            throw new IllegalArgumentException("packed codes have " + packed.length + " bytes, expected "
                    + (n + 1) / 2 + " for shape " + Arrays.toString(shape));
        }
        if ((absmax == null) == (doubleQuant == null)) {
            throw new IllegalArgumentException(
                    "exactly one of absmax and doubleQuant must be given, got "
                            + (absmax == null ? "neither" : "both"));
        }
        long blocks = (n + blocksize - 1) / blocksize;
        int scales = absmax != null ? absmax.length : doubleQuant.codes().length;
        if (scales != blocks) {
            throw new IllegalArgumentException("got " + scales + " block scales, expected " + blocks
                    + " for shape " + Arrays.toString(shape) + " in blocks of " + blocksize);
        }
    }

    /** Number of elements: the product of the shape. */
    public long numel() {
        return numel(shape);
    }

    /** Number of blocks, {@code ceil(numel / blocksize)}; the last may be partial. */
    public int blocks() {
        return (int) ((numel() + blocksize - 1) / blocksize);
    }

    /** The float32 scale of every block: {@code absmax}, or the decoded double-quantized scales. */
    public float[] scales() {
        return absmax != null ? absmax : doubleQuant.decode();
    }

    /**
     * Bytes of per-element storage: the packed codes plus the scales as bitsandbytes stores them
     * (float32 absmax, or u8 codes plus float32 nested absmax). Per-tensor constants (the 16-entry
     * code table, the 256-entry nested map, the offset, the JSON state) are excluded.
     */
    public long bytes() {
        return packed.length + (absmax != null ? 4L * absmax.length : doubleQuant.bytes());
    }

    /** {@code 8 * bytes() / numel()}: 4.5 for blocksize 64, 4.127 with double quantization. */
    public double bitsPerParameter() {
        return 8.0 * bytes() / numel();
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof QuantizedTensor q
                && type == q.type
                && Arrays.equals(shape, q.shape)
                && blocksize == q.blocksize
                && Arrays.equals(packed, q.packed)
                && Arrays.equals(absmax, q.absmax)
                && Objects.equals(doubleQuant, q.doubleQuant);
    }

    @Override
    public int hashCode() {
        int h = type.hashCode();
        h = 31 * h + Arrays.hashCode(shape);
        h = 31 * h + blocksize;
        h = 31 * h + Arrays.hashCode(packed);
        h = 31 * h + Arrays.hashCode(absmax);
        return 31 * h + Objects.hashCode(doubleQuant);
    }

    @Override
    public String toString() {
        return String.format(Locale.ROOT,
                "QuantizedTensor[%s, shape=%s, blocksize=%d%s, %d bytes, %.3f bits/param]",
                type, Arrays.toString(shape), blocksize, doubleQuant != null ? ", double-quantized" : "",
                bytes(), bitsPerParameter());
    }

    static long numel(long[] shape) {
        return Shapes.numel(shape);
    }
}
