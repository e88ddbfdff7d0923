package io.qlora4j.quant;

import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.ForkJoinPool;
import java.util.concurrent.ForkJoinTask;

/**
 * Runs independent work over contiguous ranges of blocks on a shared daemon pool. Every block is
 * computed by the same code whatever the range it falls in, so results never depend on the
 * number of threads. Shared by the formats' quantizers (bitsandbytes 4-bit here, others in subpackages).
 */
public final class BlockParallel {

    /** Work on blocks {@code [from, to)}, which may fail with {@code E}. */
    public interface RangeTask<E extends Exception> {
        /** Processes blocks {@code [from, to)}. */
        void run(int from, int to) throws E;
    }

    /** Work on whole rows read from a source: {@code rows} rows from {@code firstRow} on, in {@code buffer[0, rows * in)}. */
    public interface RowTask<E extends Exception> {
        /** Processes the rows held in {@code buffer}. */
        void run(float[] buffer, int firstRow, int rows) throws E;
    }

    /** Elements {@link #forEachRows} reads at once per thread (whole rows, at least one). */
    private static final int ROW_CHUNK_ELEMENTS = 1 << 16;

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
     * waits for all of them, even when one fails, so no range still runs once this returns. The
     * first failure is rethrown as it was thrown (later ones are added to it as suppressed).
     */
    public static <E extends Exception> void forEachRange(int blocks, int blockElements, int threads, RangeTask<E> task)
            throws E {
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
            forked.add(POOL.submit(() -> runWrapped(task, from, to)));
        }
        Throwable failure = null;
        try {
            task.run(0, bound(blocks, parts, 1));
        } catch (Exception | Error e) {
            failure = e;
        }
        for (ForkJoinTask<?> f : forked) {
            try {
                f.join();
            } catch (RuntimeException | Error e) {
                failure = addFailure(failure, unwrap(e));
            }
        }
        if (failure != null) {
            throw BlockParallel.<E>rethrow(failure);
        }
    }

    /**
     * Reads the {@code rows * in} row-major values of {@code source} a chunk of whole rows at a time (about 64K
     * elements) on every core and hands each chunk to {@code task}, so no float array of the whole tensor exists:
     * how per-row quantizers (LLM.int8, EETQ) stream a weight from a checkpoint.
     */
    public static <E extends Exception> void forEachRows(FloatSource<E> source, int rows, int in, RowTask<E> task)
            throws E {
        int chunkRows = Math.max(1, ROW_CHUNK_ELEMENTS / Math.max(1, in));
        forEachRange(rows, in, Runtime.getRuntime().availableProcessors(), (from, to) -> {
            float[] buffer = new float[Math.min(chunkRows, to - from) * in];
            for (int r = from; r < to; r += chunkRows) {
                int n = Math.min(chunkRows, to - r);
                source.read((long) r * in, buffer, 0, n * in);
                task.run(buffer, r, n);
            }
        });
    }

    /** Runs a pool range, carrying its exception out in a {@link Failure}. */
    private static <E extends Exception> void runWrapped(RangeTask<E> task, int from, int to) {
        try {
            task.run(from, to);
        } catch (Exception e) {
            throw new Failure(e);
        }
    }

    /** The task's own exception behind a {@link Failure} (which the pool may have wrapped again), else {@code joined}. */
    private static Throwable unwrap(Throwable joined) {
        for (Throwable t = joined; t != null; t = t.getCause()) {
            if (t instanceof Failure) {
                return t.getCause();
            }
        }
        return joined;
    }

    private static Throwable addFailure(Throwable first, Throwable next) {
        if (first == null) {
            return next;
        }
        if (next != first) {
            first.addSuppressed(next);
        }
        return first;
    }

    /** Throws {@code t}: unchecked as it is, and otherwise the task's {@code E}, the only checked type it throws. */
    @SuppressWarnings("unchecked")
    private static <E extends Exception> E rethrow(Throwable t) throws E {
        if (t instanceof RuntimeException r) {
            throw r;
        }
        if (t instanceof Error e) {
            throw e;
        }
        throw (E) t;
    }

    private static int bound(int blocks, int parts, int p) {
        return (int) ((long) blocks * p / parts);
    }

    /**
     * Carries a pool range's exception to the caller as it was thrown (the pool would otherwise pass an
     * unchecked one on as a copy of its type); no public constructor, so the pool never copies this either.
     */
    private static final class Failure extends RuntimeException {
        private static final long serialVersionUID = 1L;

        private Failure(Exception cause) {
            super(cause);
        }
    }
}
