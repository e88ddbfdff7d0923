package io.qlora4j.trainer;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;

/**
 * {@code output_dir/metrics.jsonl}: one JSON object per logged step ({@code step, epoch, loss, lr,
 * grad_norm, tokens_per_s, state_device_bytes, state_host_bytes, paged_bytes_per_step}), appended and flushed as the run goes so a crash keeps what was logged.
 * A resumed run first rewrites it from its checkpoint's history, dropping the lines of the lost steps.
 */
final class MetricsLog {
    /** The file name at the top of output_dir. */
    static final String FILE = "metrics.jsonl";

    private final Path file;

    /** Starts the log in {@code dir} with {@code history} (empty for a fresh run). */
    MetricsLog(Path dir, List<TrainerState.LogEntry> history) throws IOException {
        this.file = dir.resolve(FILE);
        StringBuilder text = new StringBuilder();
        for (TrainerState.LogEntry entry : history) {
            text.append(entry.toJsonLine()).append('\n');
        }
        AtomicFiles.write(file, text.toString());
    }

    /** Appends one entry. */
    void append(TrainerState.LogEntry entry) throws IOException {
        Files.writeString(file, entry.toJsonLine() + "\n", StandardCharsets.UTF_8, StandardOpenOption.APPEND);
    }
}
