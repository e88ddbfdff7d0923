package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.trainer.cli.ProcessMemory;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;

/** What {@link GlibcHeap#release()} hands back, on libtorch's own arrays. */
class GlibcHeapTest {

    /**
     * 100 KB arrays come from glibc's heap (below its initial 128 KiB mmap threshold, unset here). Keeping every
     * tenth pins the heap's top, so freeing the others leaves 36 MB free in its middle, resident until released.
     */
    @Test
    void releaseHandsTheFreeMiddleOfTheHeapBackToTheKernel() {
        assumeTrue(GlibcHeap.available(), "not glibc");
        assumeTrue(System.getenv("MALLOC_MMAP_THRESHOLD_") == null, "a fixed mmap threshold is set");
        try (NDManager manager = NDManager.newBaseManager()) {
            List<NDArray> all = new ArrayList<>();
            for (int i = 0; i < 400; i++) {
                all.add(manager.ones(new Shape(25_000))); // 100 KB, written, so resident
            }
            List<NDArray> kept = new ArrayList<>();
            for (int i = 0; i < all.size(); i++) {
                if (i % 10 == 0) {
                    kept.add(all.get(i));
                } else {
                    all.get(i).close();
                }
            }
            long before = ProcessMemory.statusBytes("VmRSS");
            assertTrue(GlibcHeap.release(), "malloc_trim released nothing");
            long after = ProcessMemory.statusBytes("VmRSS");
            assertTrue(before - after > 20_000_000, "RSS " + before + " -> " + after);
            assertTrue(kept.stream().allMatch(a -> a.sum().getFloat() == 25_000f), "a kept array changed");
        }
    }
}
