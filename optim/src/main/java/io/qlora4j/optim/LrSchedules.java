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
     * Returns the warmup length: {@code warmupSteps} when positive, else {@code ceil(totalSteps *
     * warmupRatio)} computed in double as HF does (so a ratio of 0.07 over 100 steps gives 8).
     */
    public static int warmupSteps(int warmupSteps, double warmupRatio, int totalSteps) {
        if (warmupSteps < 0) {
            throw new IllegalArgumentException("warmup_steps must be >= 0, got " + warmupSteps);
        }
        if (!(warmupRatio >= 0 && warmupRatio <= 1)) {
            throw new IllegalArgumentException(
                    "warmup_ratio must be in [0, 1], got " + warmupRatio);
        }
        if (warmupSteps > 0) {
            return warmupSteps;
        }
        return (int) Math.ceil(totalSteps * warmupRatio);
    }
}
