package io.qlora4j.trainer;

import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.util.List;

/**
 * How often a run logs, checkpoints and scores its {@code val_size} split, in optimizer steps, as transformers'
 * Trainer resolves {@code logging_steps}, {@code save_steps} and {@code eval_steps}: a whole number is a count of
 * steps, a fraction below 1 a share of the run's steps ({@code ceil(total * fraction)}); {@code eval_steps} unset
 * or 0 follows {@code logging_steps}, and {@code save_steps} matters only with {@code save_strategy: steps}.
 *
 * @param logging steps between log entries
 * @param save steps between checkpoints (with {@code save_strategy: steps}; a save_steps of 0 or less, allowed
 *     with the other strategies, never comes)
 * @param eval steps between scores of the held-out split
 */
record StepIntervals(int logging, int save, int eval) {
    private static final List<String> KEYS = List.of("logging_steps", "save_steps", "eval_steps");

    /**
     * Checks the three keys before a run starts (and before it writes anything).
     *
     * @throws ConfigException for a value that is neither a fraction between 0 and 1 nor a whole number of steps
     *     (transformers refuses 0 and a number above 1 that is not whole)
     */
    static void check(JobConfig config) throws ConfigException {
        for (String key : KEYS) {
            Double value = config.number(key);
            boolean unused = (key.equals("eval_steps") && Double.valueOf(0).equals(value))
                    || (key.equals("save_steps") && !config.string("save_strategy").equals("steps"));
            if (value != null && !unused && !(value > 0 && value < 1) && !(value >= 1 && value == Math.rint(value))) {
                throw new ConfigException(key + ": " + value + " is neither a whole number of steps nor a fraction of"
                        + " the run between 0 and 1");
            }
        }
    }

    /** The intervals of a run of {@code total} steps, the keys {@link #check checked}. */
    static StepIntervals of(JobConfig config, int total) {
        int logging = steps(config.number("logging_steps"), total);
        Double eval = config.number("eval_steps");
        Double save = config.number("save_steps");
        return new StepIntervals(logging, save > 0 ? steps(save, total) : Integer.MAX_VALUE,
                eval == null || eval == 0 ? logging : steps(eval, total));
    }

    private static int steps(double value, int total) {
        return value < 1 ? Math.max(1, (int) Math.ceil(total * value)) : (int) Math.min(value, Integer.MAX_VALUE);
    }
}
