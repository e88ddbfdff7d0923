package io.qlora4j.quant;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.Arrays;
import java.util.Random;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.concurrent.atomic.AtomicLong;
import org.junit.jupiter.api.Test;

/** {@link BlockwiseQuantizer#quantize(FloatSource, long[])} against the float[] path, byte for byte. */
class StreamingQuantizeTest {

    /** Odd, not a multiple of any blocksize or chunk below: a partial last block and a padding nibble. */
    private static final int N = 3 * (1 << 17) + 4097;

    /** Gaussian values with an all-zero block (elements 64..127, and 4096..8191 for blocksize 4096). */
    private static float[] data() {
        Random rnd = new Random(42);
        float[] x = new float[N];
        for (int i = 0; i < N; i++) {
            x[i] = (float) rnd.nextGaussian() * (1 + i % 7);
        }
        Arrays.fill(x, 64, 128, 0f);
        Arrays.fill(x, 4096, 8192, 0f);
        return x;
    }

    private static FloatSource<RuntimeException> source(float[] x) {
        return (offset, dest, destPos, count) -> System.arraycopy(x, Math.toIntExact(offset), dest, destPos, count);
    }

    private static void assertSameQuantization(QuantizedTensor expected, QuantizedTensor actual, String what) {
        assertArrayEquals(expected.packed(), actual.packed(), what + ": packed");
        if (expected.absmax() != null) {
            assertArrayEquals(expected.absmax(), actual.absmax(), what + ": absmax");
        } else {
            DoubleQuantizedScales e = expected.doubleQuant();
            DoubleQuantizedScales a = actual.doubleQuant();
            assertArrayEquals(e.codes(), a.codes(), what + ": scale codes");
            assertArrayEquals(e.nestedAbsmax(), a.nestedAbsmax(), what + ": nested absmax");
            assertEquals(Float.floatToRawIntBits(e.offset()), Float.floatToRawIntBits(a.offset()), what + ": offset");
        }
        assertArrayEquals(expected.shape(), actual.shape(), what + ": shape");
        assertEquals(expected, actual, what);
    }

    @Test
    void streamingGivesTheBytesOfTheArrayPath() {
        float[] x = data();
        long[] shape = {1, N};
        for (QuantType type : QuantType.values()) {
            for (int blocksize : new int[] {64, 4096}) {
                for (boolean dq : new boolean[] {false, true}) {
                    QuantizedTensor expected = BlockwiseQuantizer.builder().optType(type).optBlocksize(blocksize)
                            .optDoubleQuant(dq).optThreads(1).build().quantize(x, shape);
                    for (int threads : new int[] {1, 2, 3, 8}) {
                        BlockwiseQuantizer q = BlockwiseQuantizer.builder().optType(type).optBlocksize(blocksize)
                                .optDoubleQuant(dq).optThreads(threads).build();
                        for (int chunk : new int[] {1, 7 * blocksize, BlockwiseQuantizer.CHUNK_ELEMENTS, 1 << 22}) {
                            String what = type + " blocksize " + blocksize + (dq ? " DQ" : "") + ", " + threads
                                    + " threads, chunk " + chunk;
                            assertSameQuantization(expected, q.quantize(source(x), shape, chunk), what);
                        }
                        assertSameQuantization(expected, q.quantize(x, shape), type + " array path, " + threads);
                    }
                }
            }
        }
    }

    @Test
    void readsEveryElementOnceInWholeBlocksAndNeverTheWholeTensor() {
        float[] x = data();
        int chunk = 7 * 64;
        AtomicLong read = new AtomicLong();
        AtomicInteger largest = new AtomicInteger();
        FloatSource<RuntimeException> counting = (offset, dest, destPos, count) -> {
            assertEquals(0, offset % 64, "reads start on a block");
            read.addAndGet(count);
            largest.accumulateAndGet(count, Math::max);
            source(x).read(offset, dest, destPos, count);
        };
        BlockwiseQuantizer.builder().optThreads(2).build().quantize(counting, new long[] {N}, chunk);
        assertEquals(N, read.get());
        assertEquals(chunk, largest.get());
    }

    /** A checked exception of the caller's own type, as a file reader throws. */
    static final class ReadException extends Exception {
        private static final long serialVersionUID = 1L;

        ReadException(String message) {
            super(message);
        }
    }

    @Test
    void aReadFailureReachesTheCallerAsThrownAfterEveryThreadStops() {
        float[] x = data();
        ReadException failure = new ReadException("disk gone");
        AtomicInteger active = new AtomicInteger();
        AtomicInteger calls = new AtomicInteger();
        FloatSource<ReadException> failing = (offset, dest, destPos, count) -> {
            active.incrementAndGet();
            try {
                calls.incrementAndGet();
                if (offset >= N / 2) {
                    throw failure; // a range on a pool thread when the work is split
                }
                source(x).read(offset, dest, destPos, count);
            } finally {
                active.decrementAndGet();
            }
        };
        for (int threads : new int[] {1, 2, 4}) {
            BlockwiseQuantizer q = BlockwiseQuantizer.builder().optThreads(threads).build();
            ReadException thrown = assertThrows(ReadException.class, () -> q.quantize(failing, new long[] {N}, 4096));
            assertSame(failure, thrown, threads + " threads");
            assertEquals(0, active.get(), "no read still running once quantize returns");
        }
        assertTrue(calls.get() > 0);
    }

    @Test
    void anUncheckedReadFailureOnAPoolThreadIsRethrownItself() {
        IllegalStateException failure = new IllegalStateException("mapping failed");
        FloatSource<RuntimeException> failing = (offset, dest, destPos, count) -> {
            if (offset >= N / 2) {
                throw failure;
            }
        };
        BlockwiseQuantizer q = BlockwiseQuantizer.builder().optThreads(2).build();
        assertSame(failure, assertThrows(IllegalStateException.class, () -> q.quantize(failing, new long[] {N})));
    }

    @Test
    void aShapeTooLargeForOneArrayIsRejected() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> BlockwiseQuantizer.builder().build().quantize(source(new float[0]), new long[] {1 << 16, 1 << 16}));
        assertTrue(e.getMessage().contains("[65536, 65536]"), e.getMessage());
    }
}
