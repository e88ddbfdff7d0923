package io.qlora4j.quant;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.lang.management.ManagementFactory;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.FloatBuffer;

/** What the decoding tests share: an output whose unwritten values show, bit-exact comparison, allocation counts. */
public final class DecodeChecks {
    /** The value of every element no decoding wrote. */
    public static final float NOT_WRITTEN = -12345f;

    private DecodeChecks() {}

    /** A direct native-order buffer of {@code n} values, each {@link #NOT_WRITTEN}. */
    public static FloatBuffer unwritten(int n) {
        FloatBuffer out = ByteBuffer.allocateDirect(4 * n).order(ByteOrder.nativeOrder()).asFloatBuffer();
        for (int i = 0; i < n; i++) {
            out.put(i, NOT_WRITTEN);
        }
        return out;
    }

    /** Fails at the first element of {@code actual} whose float bits differ from {@code expected}'s. */
    public static void assertBits(float[] expected, FloatBuffer actual, String what) {
        for (int i = 0; i < expected.length; i++) {
            assertEquals(Float.floatToRawIntBits(expected[i]), Float.floatToRawIntBits(actual.get(i)),
                    what + ": element " + i + " (" + expected[i] + " expected, " + actual.get(i) + " written)");
        }
    }

    /**
     * Checks that a warmed-up SIMD kernel is compiled: {@code warmedUp} (its warm-up saw calls stop allocating), the
     * first real call of {@code decode} (of {@code values} values) allocates far less than an interpreted one would
     * (about 350 bytes per value; a recompilation on the first call's shapes, seen once, made 24 MB per million),
     * and the next call allocates nothing per step of the kernel (a boxed vector, about 100 bytes, would show in
     * megabytes), only its caller's chunk arrays.
     */
    public static void assertCompiledAfterWarmUp(boolean warmedUp, Runnable decode, int values) {
        assertTrue(warmedUp, "the kernel's calls stop allocating");
        long first = allocatedBy(decode);
        assertTrue(first < 64L << 20, first + " bytes allocated by the first call decoding " + values + " values");
        long next = allocatedBy(decode);
        assertTrue(next < 256 * 1024, next + " bytes allocated by the next call decoding " + values + " values");
    }

    /** Bytes this thread allocated running {@code work}. */
    private static long allocatedBy(Runnable work) {
        var threads = (com.sun.management.ThreadMXBean) ManagementFactory.getThreadMXBean();
        long before = threads.getCurrentThreadAllocatedBytes();
        work.run();
        return threads.getCurrentThreadAllocatedBytes() - before;
    }
}
