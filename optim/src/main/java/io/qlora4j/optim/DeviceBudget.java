package io.qlora4j.optim;

/**
 * The paged optimizer's default device budget on a GPU (no {@code paged_budget_mb}): what the device reports free
 * when the state is first placed, less a margin of 5% of the device's memory but at least 512 MiB, and never less
 * than one page. The training run and the memory planner both take it from here.
 */
public final class DeviceBudget {
    /** The smallest margin left free on the device. */
    public static final long MIN_MARGIN = 512L << 20;

    private DeviceBudget() {}

    /** The margin kept free on a device of {@code totalBytes}. */
    public static long margin(long totalBytes) {
        return Math.max(MIN_MARGIN, totalBytes / 20);
    }

    /** The budget for {@code freeBytes} free of {@code totalBytes}, pages of {@code pageBytes}. */
    public static long of(long freeBytes, long totalBytes, long pageBytes) {
        return Math.max(pageBytes, freeBytes - margin(totalBytes));
    }
}
