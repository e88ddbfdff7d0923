package io.qlora4j.optim;

/**
 * Half-cosine decay from the base rate at the end of warmup to 0 at {@code totalSteps}, as HF
 * {@code cosine} after its warmup with {@code num_cycles = 0.5}: {@code base * max(0, 0.5 * (1 +
 * cos(pi * 0.5 * 2 * progress)))}, progress = {@code (step - warmup) / max(1, total - warmup)}.
 */
final class CosineSchedule implements LrSchedule {

    private static final double NUM_CYCLES = 0.5;

    private final double baseLr;
    private final int warmupSteps;
    private final int totalSteps;

    CosineSchedule(double baseLr, int warmupSteps, int totalSteps) {
        this.baseLr = baseLr;
        this.warmupSteps = warmupSteps;
        this.totalSteps = totalSteps;
    }

    @Override
    public double lr(int step) {
        double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
        double factor = 0.5 * (1.0 + Math.cos(Math.PI * NUM_CYCLES * 2.0 * progress));
        return baseLr * Math.max(0.0, factor);
    }
}
