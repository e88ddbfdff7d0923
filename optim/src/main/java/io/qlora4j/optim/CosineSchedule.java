package io.qlora4j.optim;

/**
 * Cosine decay after warmup, as transformers' {@code cosine} ({@code num_cycles = 0.5}: a half cosine from the base
 * rate to 0 at {@code totalSteps}) and {@code cosine_with_min_lr} (the factor lifted to {@code minLrRate}):
 * {@code base * max(0, f * (1 - minLrRate) + minLrRate)} with {@code f = 0.5 * (1 + cos(pi * numCycles * 2 *
 * progress))}, progress = {@code (step - warmup) / max(1, total - warmup)}.
 *
 * @param baseLr the rate at the end of warmup
 * @param warmupSteps the warmup length, where the decay starts
 * @param totalSteps the step the progress counts to
 * @param numCycles cosine waves over the decay (0.5: one half wave)
 * @param minLrRate the share of the base rate the factor never falls below (0: down to 0)
 */
record CosineSchedule(double baseLr, int warmupSteps, int totalSteps, double numCycles, double minLrRate)
        implements LrSchedule {

    @Override
    public double lr(int step) {
        double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
        double factor = 0.5 * (1.0 + Math.cos(Math.PI * numCycles * 2.0 * progress));
        return baseLr * Math.max(0.0, factor * (1 - minLrRate) + minLrRate);
    }
}
