package io.qlora4j.optim;

/**
 * transformers' {@code inverse_sqrt} after warmup: {@code base / sqrt((step + timescale - warmup) / timescale)}, the
 * base rate at the end of warmup decaying as one over the square root of the steps.
 *
 * @param baseLr the rate at the end of warmup
 * @param warmupSteps the warmup length
 * @param timescale the decay's time scale (transformers' default: the warmup length, or 10,000 without warmup)
 */
record InverseSqrtSchedule(double baseLr, int warmupSteps, double timescale) implements LrSchedule {

    @Override
    public double lr(int step) {
        double shift = timescale - warmupSteps;
        return baseLr * (1.0 / Math.sqrt((step + shift) / timescale));
    }
}
