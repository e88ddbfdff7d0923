package io.qlora4j.optim;

/**
 * transformers' {@code cosine_with_restarts} after warmup: {@code numCycles} half cosines from the base rate to 0,
 * each restarting at the base rate, {@code base * max(0, 0.5 * (1 + cos(pi * ((numCycles * progress) mod 1))))}, and
 * 0 from {@code totalSteps} on.
 *
 * @param baseLr the rate at the end of warmup and at each restart
 * @param warmupSteps the warmup length, where the decay starts
 * @param totalSteps the step the progress counts to
 * @param numCycles the number of hard restarts (transformers' default 1)
 */
record RestartsSchedule(double baseLr, int warmupSteps, int totalSteps, double numCycles) implements LrSchedule {

    @Override
    public double lr(int step) {
        double progress = (double) (step - warmupSteps) / Math.max(1, totalSteps - warmupSteps);
        if (progress >= 1.0) {
            return 0.0;
        }
        // Python's float % 1.0, as transformers takes it: in [0, 1) for a negative num_cycles too (Java's % keeps the
        // sign, which turns each cosine the other way)
        double phase = (numCycles * progress) % 1.0;
        if (phase < 0) {
            phase += 1.0;
        }
        return baseLr * Math.max(0.0, 0.5 * (1.0 + Math.cos(Math.PI * phase)));
    }
}
