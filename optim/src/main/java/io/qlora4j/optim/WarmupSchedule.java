package io.qlora4j.optim;

/**
 * Linear warmup from 0 to the base rate over the first {@code warmupSteps} steps ({@code base *
 * step / max(1, warmupSteps)}), then whatever the wrapped schedule says.
 */
final class WarmupSchedule implements LrSchedule {

    private final double baseLr;
    private final int warmupSteps;
    private final LrSchedule after;

    WarmupSchedule(double baseLr, int warmupSteps, LrSchedule after) {
        this.baseLr = baseLr;
        this.warmupSteps = warmupSteps;
        this.after = after;
    }

    @Override
    public double lr(int step) {
        if (step < warmupSteps) {
            return baseLr * ((double) step / Math.max(1, warmupSteps));
        }
        return after.lr(step);
    }
}
