package io.qlora4j.quant;

/**
 * Float32 values of a row-major tensor, read a range at a time: lets
 * {@link BlockwiseQuantizer#quantize(FloatSource, long[])} quantize a weight straight from a file
 * without the whole weight ever existing as one float array. Implementations must allow calls from
 * several threads at once for disjoint ranges.
 *
 * @param <E> the checked exception a read may throw ({@link RuntimeException} for none)
 */
@FunctionalInterface
public interface FloatSource<E extends Exception> {

    /** Copies elements {@code [offset, offset + count)} into {@code dest[destPos, destPos + count)}. */
    void read(long offset, float[] dest, int destPos, int count) throws E;

    /** The elements of {@code values} (held, not copied), as a source that never fails. */
    static <E extends Exception> FloatSource<E> of(float[] values) {
        return (offset, dest, destPos, count) -> System.arraycopy(values, Math.toIntExact(offset), dest, destPos, count);
    }
}
