package io.qlora4j.optim;

/**
 * Linear decay from the base rate at the end of warmup to 0 at {@code totalSteps}: {@code base *
 * max(0, (total - step) / max(1, total - warmup))}, as HF {@code linear} after its warmup.
 */
final class LinearSchedule implements LrSchedule {

    private final double baseLr;
    private final int warmupSteps;
    private final int totalSteps;

    LinearSchedule(double baseLr, int warmupSteps, int totalSteps) {
        this.baseLr = baseLr;
        this.warmupSteps = warmupSteps;
        this.totalSteps = totalSteps;
    }

    @Override
    public double lr(int step) {
        double factor = (double) (totalSteps - step) / Math.max(1, totalSteps - warmupSteps);
        return baseLr * Math.max(0.0, factor);
    }
}
