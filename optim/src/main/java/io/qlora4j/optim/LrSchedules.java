package io.qlora4j.optim;

import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;

/**
 * Creates the learning-rate schedules by their transformers {@code lr_scheduler_type} names, with the settings
 * transformers' {@code get_scheduler} passes them from {@code lr_scheduler_kwargs}, and resolves the warmup length the
 * way transformers' {@code TrainingArguments.get_warmup_steps} does.
 */
public final class LrSchedules {

    /** The schedule names {@link #create} accepts. */
    public static final List<String> NAMES = List.of("constant", "constant_with_warmup", "linear", "cosine",
            "cosine_with_restarts", "polynomial", "inverse_sqrt", "cosine_with_min_lr");

    /** The settings each schedule takes from {@code lr_scheduler_kwargs} (transformers' keyword arguments). */
    private static final Map<String, Set<String>> SETTINGS = Map.of(
            "cosine", Set.of("num_cycles"),
            "cosine_with_restarts", Set.of("num_cycles"),
            "polynomial", Set.of("lr_end", "power"),
            "inverse_sqrt", Set.of("timescale"),
            "cosine_with_min_lr", Set.of("num_cycles", "min_lr", "min_lr_rate"));

    private LrSchedules() {}

    /** {@link #create(String, double, int, int, Map)} without settings. */
    public static LrSchedule create(String type, double baseLr, int warmupSteps, int totalSteps) {
        return create(type, baseLr, warmupSteps, totalSteps, Map.of());
    }

    /**
     * Returns the schedule {@code type} starting from {@code baseLr} with {@code warmupSteps} of linear warmup
     * (ignored by {@code constant}) over {@code totalSteps}, with {@code settings} (lr_scheduler_kwargs: num_cycles
     * for the cosines, lr_end and power for polynomial, timescale for inverse_sqrt, min_lr or min_lr_rate for
     * cosine_with_min_lr, transformers' defaults where unset).
     *
     * @throws ScheduleSettingException for a setting the type does not take, or setting values transformers
     *     refuses (a polynomial's lr_end not below the rate, cosine_with_min_lr without its floor) or that would take
     *     the rate below 0 or to NaN (a negative lr_end, a timescale not above 0, min_lr over a rate of 0)
     * @throws IllegalArgumentException for an unknown type, or a rate or step count out of range
     */
    public static LrSchedule create(String type, double baseLr, int warmupSteps, int totalSteps,
            Map<String, Double> settings) {
        if (!(baseLr >= 0 && Double.isFinite(baseLr))) {
            throw new IllegalArgumentException("learning rate must be finite and >= 0, got " + baseLr);
        }
        if (warmupSteps < 0 || totalSteps < 0) {
            throw new IllegalArgumentException(
                    "warmup and total steps must be >= 0, got " + warmupSteps + " and " + totalSteps);
        }
        if (!NAMES.contains(type)) {
            throw new IllegalArgumentException("unknown lr_scheduler_type '" + type + "'; allowed: "
                    + String.join(", ", NAMES));
        }
        Set<String> takes = SETTINGS.getOrDefault(type, Set.of());
        for (String name : settings.keySet()) {
            if (!takes.contains(name)) {
                throw new ScheduleSettingException("lr_scheduler_kwargs: " + type + " takes "
                        + (takes.isEmpty() ? "no settings" : String.join(", ", new TreeSet<>(takes))) + ", not "
                        + name);
            }
        }
        LrSchedule decay = switch (type) {
            case "constant" -> null;
            case "constant_with_warmup" -> new ConstantSchedule(baseLr);
            case "linear" -> new LinearSchedule(baseLr, warmupSteps, totalSteps);
            case "cosine" -> new CosineSchedule(baseLr, warmupSteps, totalSteps,
                    settings.getOrDefault("num_cycles", 0.5), 0);
            case "cosine_with_restarts" -> new RestartsSchedule(baseLr, warmupSteps, totalSteps,
                    settings.getOrDefault("num_cycles", 1.0));
            case "polynomial" -> polynomial(baseLr, warmupSteps, totalSteps, settings);
            case "inverse_sqrt" -> inverseSqrt(baseLr, warmupSteps, settings);
            default -> new CosineSchedule(baseLr, warmupSteps, totalSteps, settings.getOrDefault("num_cycles", 0.5),
                    minLrRate(baseLr, settings));
        };
        return decay == null ? new ConstantSchedule(baseLr) : new WarmupSchedule(baseLr, warmupSteps, decay);
    }

    private static LrSchedule polynomial(double baseLr, int warmupSteps, int totalSteps, Map<String, Double> settings) {
        double lrEnd = settings.getOrDefault("lr_end", 1e-7);
        if (!(baseLr > lrEnd)) {
            throw new ScheduleSettingException("lr_scheduler_kwargs: lr_end " + lrEnd + " must be below the learning"
                    + " rate " + baseLr + " (polynomial)");
        }
        if (lrEnd < 0) {
            // transformers decays into negative rates (gradient ascent) before the end; qlora4j's optimizers refuse one
            throw new ScheduleSettingException("lr_scheduler_kwargs: lr_end " + lrEnd + " must not be negative"
                    + " (polynomial ends at it)");
        }
        return new PolynomialSchedule(baseLr, warmupSteps, totalSteps, lrEnd, settings.getOrDefault("power", 1.0));
    }

    /** inverse_sqrt over its timescale, which must be above 0 (transformers divides by it, and takes its root). */
    private static LrSchedule inverseSqrt(double baseLr, int warmupSteps, Map<String, Double> settings) {
        double timescale = settings.getOrDefault("timescale", warmupSteps > 0 ? (double) warmupSteps : 10_000);
        if (!(timescale > 0)) {
            throw new ScheduleSettingException("lr_scheduler_kwargs: timescale " + timescale + " must be above 0"
                    + " (inverse_sqrt divides the steps by it)");
        }
        return new InverseSqrtSchedule(baseLr, warmupSteps, timescale);
    }

    /** cosine_with_min_lr's floor as a share of the rate: min_lr_rate, or min_lr over the rate; exactly one. */
    private static double minLrRate(double baseLr, Map<String, Double> settings) {
        Double rate = settings.get("min_lr_rate");
        Double min = settings.get("min_lr");
        if ((rate == null) == (min == null)) {
            throw new ScheduleSettingException("lr_scheduler_kwargs: cosine_with_min_lr takes one of min_lr and"
                    + " min_lr_rate, got " + (rate == null ? "neither" : "both"));
        }
        if (min != null && baseLr == 0) {
            // transformers divides by the rate here (ZeroDivisionError)
            throw new ScheduleSettingException("lr_scheduler_kwargs: min_lr " + min + " is a share of the learning"
                    + " rate, which is 0 (cosine_with_min_lr); set min_lr_rate instead");
        }
        return rate != null ? rate : min / baseLr;
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
