package io.qlora4j.trainer;

import java.nio.file.Path;

/**
 * How a training run ended.
 *
 * @param globalStep the optimizer steps completed
 * @param maxSteps the steps the run was planned for
 * @param loss the last logged loss (NaN when nothing was logged)
 * @param outputDir where the output went
 * @param lastCheckpoint the newest complete checkpoint, or null when none was saved
 * @param failure why the run stopped early (one line), or null when it completed
 */
public record TrainingResult(int globalStep, int maxSteps, double loss, Path outputDir, Path lastCheckpoint,
        String failure) {

    /** Whether the run reached its last step and wrote its output. */
    public boolean completed() {
        return failure == null;
    }
}
