package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.util.List;
import java.util.concurrent.TimeUnit;

/** What the launcher tests read of a command they start: its standard output, once it ended with status 0. */
final class ProcessOutput {
    private ProcessOutput() {}

    /**
     * Standard output of {@code builder}'s process (its stderr discarded), which must end with status 0 within
     * {@code minutes}.
     */
    static List<String> of(ProcessBuilder builder, long minutes) throws Exception {
        Process process = builder.redirectError(ProcessBuilder.Redirect.DISCARD).start();
        List<String> out = new String(process.getInputStream().readAllBytes()).lines().toList();
        assertTrue(process.waitFor(minutes, TimeUnit.MINUTES), String.join(" ", builder.command()));
        assertEquals(0, process.exitValue(), String.join(" ", builder.command()));
        return out;
    }
}
