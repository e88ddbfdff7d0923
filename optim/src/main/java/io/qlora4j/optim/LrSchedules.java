package io.qlora4j.optim;

import java.util.List;

/**
 * Creates the learning-rate schedules by their HF {@code lr_scheduler_type} names and resolves the
 * warmup length the way HF {@code TrainingArguments.get_warmup_steps} does.
 */
public final class LrSchedules {

    /** The schedule names {@link #create} accepts. */
    public static final List<String> NAMES =
            List.of("constant", "constant_with_warmup", "linear", "cosine");

    private LrSchedules() {}

    /**
     * Returns the schedule {@code type} starting from {@code baseLr} with {@code warmupSteps} of
     * linear warmup (ignored by {@code constant}) and decaying to 0 at {@code totalSteps}.
     */
    public static LrSchedule create(String type, double baseLr, int warmupSteps, int totalSteps) {
        if (!(baseLr >= 0 && Double.isFinite(baseLr))) {
            throw new IllegalArgumentException(
                    "learning rate must be finite and >= 0, got " + baseLr);
        }
        if (warmupSteps < 0 || totalSteps < 0) {
            throw new IllegalArgumentException(
                    "warmup and total steps must be >= 0, got " + warmupSteps + " and "
                            + totalSteps);
        }
        switch (type) {
            case "constant":
                return new ConstantSchedule(baseLr);
            case "constant_with_warmup":
                return new WarmupSchedule(baseLr, warmupSteps, new ConstantSchedule(baseLr));
            case "linear":
                return new WarmupSchedule(
                        baseLr, warmupSteps, new LinearSchedule(baseLr, warmupSteps, totalSteps));
            case "cosine":
                return new WarmupSchedule(
                        baseLr, warmupSteps, new CosineSchedule(baseLr, warmupSteps, totalSteps));
            default:
                throw new IllegalArgumentException(
                        "unknown lr_scheduler_type '" + type + "'; allowed: "
                                + String.join(", ", NAMES));
        }
    }

    /**
     * The warmup length as transformers 5's {@code get_warmup_steps} reads {@code warmup_steps}: a value of at least
     * 1 is a count of steps (a fraction part dropped), a smaller one a share of the run, {@code ceil(totalSteps *
     * value)} computed in double as Python does (so 0.07 over 100 steps gives 8).
     */
    public static int warmupSteps(double warmupSteps, int totalSteps) {
        if (!(warmupSteps >= 0)) {
            throw new IllegalArgumentException("warmup_steps must be >= 0, got " + warmupSteps);
        }
        return warmupSteps >= 1 ? (int) Math.min(warmupSteps, Integer.MAX_VALUE)
                : (int) Math.ceil(totalSteps * warmupSteps);
    }
}
