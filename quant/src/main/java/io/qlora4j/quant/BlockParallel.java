package io.qlora4j.quant;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;

/**
 * Runs independent work over contiguous ranges of blocks on a shared daemon pool. Every block is
 * computed by the same code whatever the range it falls in, so results never depend on the
 * number of threads.
 */
final class BlockParallel {

    /** Work on blocks {@code [from, to)}. */
    interface RangeTask {
        void run(int from, int to);
    }

    private static final ForkJoinPool POOL = new ForkJoinPool(
            Runtime.getRuntime().availableProcessors(),
            pool -> {
                var thread = ForkJoinPool.defaultForkJoinWorkerThreadFactory.newThread(pool);
                thread.setDaemon(true);
                thread.setName("qlora4j-quant-" + thread.getPoolIndex());
                return thread;
            },
            null,
            false);

    /** Ranges smaller than this many elements are not worth a task of their own. */
    private static final long MIN_ELEMENTS_PER_TASK = 1 << 16;

    private BlockParallel() {}

    /**
     * Splits {@code blocks} blocks of {@code blockElements} elements into at most {@code threads}
     * contiguous ranges, runs all but the first on the pool and the first on the caller, and
     * waits for all of them.
     */
    static void forEachRange(int blocks, int blockElements, int threads, RangeTask task) {
        long elements = (long) blocks * blockElements;
        int parts = (int) Math.max(1, Math.min(threads, elements / MIN_ELEMENTS_PER_TASK));
        parts = Math.min(parts, Math.max(1, blocks));
        if (parts == 1) {
            task.run(0, blocks);
            return;
        }
        List<ForkJoinTask<?>> forked = new ArrayList<>(parts - 1);
        for (int p = 1; p < parts; p++) {
            int from = bound(blocks, parts, p);
            int to = bound(blocks, parts, p + 1);
            forked.add(POOL.submit(() -> task.run(from, to)));
        }
        task.run(0, bound(blocks, parts, 1));
        for (ForkJoinTask<?> f : forked) {
            f.join();
        }
    }

    private static int bound(int blocks, int parts, int p) {
        return (int) ((long) blocks * p / parts);
    }
}
