package io.qlora4j.trainer;

import com.sun.jna.Function;
import com.sun.jna.NativeLibrary;
import com.sun.jna.Platform;

/**
 * glibc's heap, where libtorch's CPU arrays below the mmap threshold live. Freed blocks in its middle stay resident
 * until {@code malloc_trim} hands their pages back, so a step that allocates and frees in a different order each
 * block keeps the high water of every earlier step (heap fragmentation): from the second ~100M selective step on,
 * 0.9 GB held for 0.2 GB in use between blocks (docs/BENCHMARKS.md, "Releasing the heap each micro-batch").
 * {@link #release()} is called through JNA (a dependency of DJL's API); where the C library has no
 * {@code malloc_trim} (musl, macOS) it does nothing.
 */
public final class GlibcHeap {
    private static final Function MALLOC_TRIM = lookUp();

    private GlibcHeap() {}

    /** Whether this process's C library has {@code malloc_trim}, so that {@link #release()} does anything. */
    public static boolean available() {
        return MALLOC_TRIM != null;
    }

    /**
     * Hands every free page of glibc's heaps back to the kernel ({@code malloc_trim(0)}); true when any was. The
     * pages are faulted in again when the heap reuses them, so this trades that time for the peak it lowers.
     */
    public static boolean release() {
        return MALLOC_TRIM != null && MALLOC_TRIM.invokeInt(new Object[] {0L}) != 0;
    }

    private static Function lookUp() {
        try {
            return NativeLibrary.getInstance(Platform.C_LIBRARY_NAME).getFunction("malloc_trim");
        } catch (LinkageError unavailable) { // not glibc, or JNA's own native library cannot load here
            return null;
        }
    }
}
