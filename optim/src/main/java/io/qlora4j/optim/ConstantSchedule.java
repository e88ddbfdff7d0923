package io.qlora4j.optim;

/**
 * The same rate at every step (HF {@code constant}, which ignores any warmup setting).
 *
 * @param baseLr the rate
 */
record ConstantSchedule(double baseLr) implements LrSchedule {

    @Override
    public double lr(int step) {
        return baseLr;
    }
}
