package io.qlora4j.optim;

/**
 * transformers' {@code polynomial} after warmup: from the base rate to {@code lrEnd} at {@code totalSteps} as
 * {@code (base - lrEnd) * remaining^power + lrEnd} (remaining = {@code 1 - (step - warmup) / (total - warmup)}), then
 * {@code lrEnd}; computed as transformers does, a factor of the base rate that the scheduler multiplies back. A run
 * no longer than its warmup trains in the warmup alone; past a run exactly as long as its warmup the rate is
 * {@code lrEnd} (transformers' scheduler divides by zero there, computing the rate after the last step).
 *
 * @param baseLr the rate at the end of warmup (above {@code lrEnd})
 * @param warmupSteps the warmup length, where the decay starts
 * @param totalSteps the step at which the rate reaches {@code lrEnd}
 * @param lrEnd the final rate (transformers' default 1e-7)
 * @param power the decay's exponent (default 1: linear)
 */
record PolynomialSchedule(double baseLr, int warmupSteps, int totalSteps, double lrEnd, double power)
        implements LrSchedule {

    @Override
    public double lr(int step) {
        if (step > totalSteps || totalSteps == warmupSteps) {
            return baseLr * (lrEnd / baseLr);
        }
        double remaining = 1 - (double) (step - warmupSteps) / (totalSteps - warmupSteps);
        return baseLr * (((baseLr - lrEnd) * Math.pow(remaining, power) + lrEnd) / baseLr);
    }
}
