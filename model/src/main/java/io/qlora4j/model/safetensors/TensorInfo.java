package io.qlora4j.model.safetensors;

import java.nio.file.Path;
import java.util.Arrays;

/**
 * Where one tensor lives: its name, type, shape and the byte range {@code [begin, end)} it
 * occupies in {@code file}. Offsets are absolute file positions (header included), so a range
 * can be mapped without knowing the header length.
 */
public record TensorInfo(String name, DType dtype, long[] shape, Path file, long begin, long end) {

    /** Copies the shape so the record stays immutable. */
    public TensorInfo {
        shape = shape.clone();
    }

    /** A copy of the shape (row-major dimensions; empty for a scalar). */
    @Override
    public long[] shape() {
        return shape.clone();
    }

    /** Number of elements: the product of the dimensions (1 for a scalar). */
    public long numel() {
        return numel(shape);
    }

    /** Bytes the tensor occupies: {@code end - begin}, which equals {@code numel() * dtype().size()}. */
    public long byteSize() {
        return end - begin;
    }

    /** The product of the dimensions, failing with ArithmeticException if it overflows a long. */
    static long numel(long[] shape) {
        long n = 1;
        for (long d : shape) {
            n = Math.multiplyExact(n, d);
        }
        return n;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof TensorInfo t && name.equals(t.name) && dtype == t.dtype && Arrays.equals(shape, t.shape)
                && file.equals(t.file) && begin == t.begin && end == t.end;
    }

    @Override
    public int hashCode() {
        return 31 * (31 * name.hashCode() + Arrays.hashCode(shape)) + Long.hashCode(begin);
    }

    @Override
    public String toString() {
        return name + " " + dtype + " " + Arrays.toString(shape) + " @" + file.getFileName() + "[" + begin + ", " + end + ")";
    }
}
