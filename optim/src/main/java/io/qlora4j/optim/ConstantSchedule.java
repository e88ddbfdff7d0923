package io.qlora4j.optim;

/** The same rate at every step (HF {@code constant}, which ignores any warmup setting). */
final class ConstantSchedule implements LrSchedule {

    private final double baseLr;

    ConstantSchedule(double baseLr) {
        this.baseLr = baseLr;
    }

    @Override
    public double lr(int step) {
        return baseLr;
    }
}
