package io.qlora4j.trainer.plan;

/**
 * Byte counts in exact 64-bit arithmetic: a plan whose figures would overflow is refused rather than printed as a
 * negative or wrapped number ({@link ArithmeticException}, which the planner turns into one message).
 */
final class Exact {
    private Exact() {}

    /** The product of the factors, or an {@link ArithmeticException} when it exceeds {@link Long#MAX_VALUE}. */
    static long product(long... factors) {
        long p = 1;
        for (long f : factors) {
            p = Math.multiplyExact(p, f);
        }
        return p;
    }

    /** The sum of the terms, or an {@link ArithmeticException} when it exceeds {@link Long#MAX_VALUE}. */
    static long sum(long... terms) {
        long s = 0;
        for (long t : terms) {
            s = Math.addExact(s, t);
        }
        return s;
    }
}
