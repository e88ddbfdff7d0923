package io.qlora4j.optim;

/**
 * Linear decay from the base rate at the end of warmup to 0 at {@code totalSteps}: {@code base *
 * max(0, (total - step) / max(1, total - warmup))}, as HF {@code linear} after its warmup.
 *
 * @param baseLr the rate at the end of warmup
 * @param warmupSteps the warmup length, where the decay starts
 * @param totalSteps the step at which the rate reaches 0
 */
record LinearSchedule(double baseLr, int warmupSteps, int totalSteps) implements LrSchedule {

    @Override
    public double lr(int step) {
        double factor = (double) (totalSteps - step) / Math.max(1, totalSteps - warmupSteps);
        return baseLr * Math.max(0.0, factor);
    }
}
