package io.qlora4j.optim;

/**
 * A learning-rate schedule refused one of its settings (transformers' {@code lr_scheduler_kwargs}): a name the
 * schedule does not take, or a value it cannot run with. Its own type so that a caller can name the settings key
 * rather than the schedule type, which the plain {@link IllegalArgumentException}s of {@link LrSchedules#create}
 * are about.
 */
public final class ScheduleSettingException extends IllegalArgumentException {
    private static final long serialVersionUID = 1L;

    /** @param message what is wrong, beginning with {@code lr_scheduler_kwargs:} */
    ScheduleSettingException(String message) {
        super(message);
    }
}
