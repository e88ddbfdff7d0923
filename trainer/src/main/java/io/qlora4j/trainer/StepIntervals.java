package io.qlora4j.trainer;

import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;

/**
 * When a run logs, checkpoints and scores its {@code val_size} split, as transformers' Trainer reads
 * {@code logging_strategy}/{@code logging_steps}, {@code save_strategy}/{@code save_steps} and
 * {@code eval_strategy}/{@code eval_steps}: {@code steps} every so many optimizer steps (a whole number is a count of
 * steps, a fraction below 1 a share of the run's steps, {@code ceil(total * fraction)}), {@code epoch} at the end of
 * each epoch, {@code no} never; {@code eval_steps} unset or 0 follows {@code logging_steps}, and a job that sets
 * {@code eval_steps} without an {@code eval_strategy} scores every so many steps. The run's last step is saved (and
 * logged and scored) whatever the strategies say.
 *
 * @param logging when log entries come
 * @param save when checkpoints come
 * @param eval when the held-out split is scored
 */
record StepIntervals(Cadence logging, Cadence save, Cadence eval) {

    /**
     * One kind of event's cadence.
     *
     * @param strategy {@code steps}, {@code epoch} or {@code no}
     * @param steps the optimizer steps between events with {@code steps}
     */
    record Cadence(String strategy, int steps) {
        /** Whether the event comes after optimizer step {@code step}, which ended an epoch when {@code epochEnd}. */
        boolean due(int step, boolean epochEnd) {
            return switch (strategy) {
                case "steps" -> step % steps == 0;
                case "epoch" -> epochEnd;
                default -> false;
            };
        }
    }

    /**
     * Checks the step counts the strategies read, before a run starts (and before it writes anything).
     *
     * @throws ConfigException for a value that is neither a fraction between 0 and 1 nor a whole number of steps
     *     (transformers refuses 0 and a number above 1 that is not whole)
     */
    static void check(JobConfig config) throws ConfigException {
        check(config, "logging_steps", config.string("logging_strategy").equals("steps"));
        check(config, "save_steps", config.string("save_strategy").equals("steps"));
        Double eval = config.number("eval_steps");
        check(config, "eval_steps", eval != null && eval != 0 && !config.string("eval_strategy").equals("epoch"));
    }

    private static void check(JobConfig config, String key, boolean read) throws ConfigException {
        if (!read) {
            return;
        }
        double value = config.number(key);
        if (!(value > 0 && value < 1) && !(value >= 1 && value == Math.rint(value))) {
            throw new ConfigException(key + ": " + value + " is neither a whole number of steps nor a fraction of the"
                    + " run between 0 and 1");
        }
    }

    /** The cadences of a run of {@code total} steps, the keys {@link #check checked}. */
    static StepIntervals of(JobConfig config, int total) {
        Double evalSteps = config.number("eval_steps");
        String evalStrategy = config.string("eval_strategy");
        Cadence eval = evalStrategy.equals("epoch") ? new Cadence("epoch", 0) : cadence("steps",
                evalSteps == null || evalSteps == 0 ? config.number("logging_steps") : evalSteps, total);
        return new StepIntervals(cadence(config.string("logging_strategy"), config.number("logging_steps"), total),
                cadence(config.string("save_strategy"), config.number("save_steps"), total), eval);
    }

    private static Cadence cadence(String strategy, double steps, int total) {
        return new Cadence(strategy, strategy.equals("steps") ? steps(steps, total) : 0);
    }

    private static int steps(double value, int total) {
        return value < 1 ? Math.max(1, (int) Math.ceil(total * value)) : (int) Math.min(value, Integer.MAX_VALUE);
    }
}
