package io.qlora4j.optim;

/**
 * Linear warmup from 0 to the base rate over the first {@code warmupSteps} steps ({@code base *
 * step / max(1, warmupSteps)}), then whatever the wrapped schedule says.
 *
 * @param baseLr the rate reached at the end of warmup
 * @param warmupSteps the warmup length
 * @param after the schedule from step {@code warmupSteps} on
 */
record WarmupSchedule(double baseLr, int warmupSteps, LrSchedule after) implements LrSchedule {

    @Override
    public double lr(int step) {
        if (step < warmupSteps) {
            return baseLr * ((double) step / Math.max(1, warmupSteps));
        }
        return after.lr(step);
    }
}
