package io.qlora4j.optim;

/**
 * A learning-rate schedule: the rate for each optimizer update, as HF transformers' schedulers give
 * it. HF steps its scheduler after the optimizer, so update {@code k} (0-based) uses the rate of
 * step {@code k}: with warmup the very first update runs at rate 0.
 */
public interface LrSchedule {

    /** Returns the learning rate of the 0-based optimizer update {@code step}. */
    double lr(int step);
}
