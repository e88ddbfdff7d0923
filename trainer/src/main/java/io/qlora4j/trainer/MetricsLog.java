package io.qlora4j.trainer;

import io.qlora4j.model.checkpoint.AtomicFiles;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.List;
import java.util.Locale;

/**
 * {@code output_dir/metrics.jsonl}: one JSON object per logged step ({@code step, epoch, loss, lr,
 * grad_norm, tokens_per_s, state_device_bytes, state_host_bytes, paged_bytes_per_step}), and with
 * {@code eval_steps} one {@code {step, eval_loss, eval_perplexity}} object per evaluation, appended and
 * flushed as the run goes so a crash keeps what was logged.
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
        appendLine(entry.toJsonLine());
    }

    /** Appends the held-out loss and perplexity measured at {@code step} ({@code eval_steps}). */
    void appendEval(int step, double loss) throws IOException {
        appendLine(String.format(Locale.ROOT, "{\"step\":%d,\"eval_loss\":%s,\"eval_perplexity\":%s}", step,
                Double.toString(loss), Double.toString(Math.exp(loss))));
    }

    private void appendLine(String json) throws IOException {
        Files.writeString(file, json + "\n", StandardCharsets.UTF_8, StandardOpenOption.APPEND);
    }
}
