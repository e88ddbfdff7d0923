package io.qlora4j.optim;

/**
 * Half-cosine decay from the base rate at the end of warmup to 0 at {@code totalSteps}, as HF
 * {@code cosine} after its warmup with {@code num_cycles = 0.5}: {@code base * max(0, 0.5 * (1 +
 * cos(pi * 0.5 * 2 * progress)))}, progress = {@code (step - warmup) / max(1, total - warmup)}.
 *
 * @param baseLr the rate at the end of warmup
 * @param warmupSteps the warmup length, where the decay starts
 * @param totalSteps the step at which the rate reaches 0
 */
record CosineSchedule(double baseLr, int warmupSteps, int totalSteps) implements LrSchedule {

    private static final double NUM_CYCLES = 0.5;

    @Override
    public double lr(int step) {
        double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
        double factor = 0.5 * (1.0 + Math.cos(Math.PI * NUM_CYCLES * 2.0 * progress));
        return baseLr * Math.max(0.0, factor);
    }
}
