package io.qlora4j.trainer;

import io.qlora4j.optim.PagingStats;
import java.io.PrintWriter;
import java.util.Locale;

/**
 * What a running job shows: on a terminal one progress line redrawn after every step (step/total, bar,
 * loss, lr, tokens/s, optimizer state on device and host and bytes paged, ETA); otherwise a plain line per
 * logged step, for log files and CI.
 */
final class Progress {
    private static final int BAR_WIDTH = 24;

    private final PrintWriter out;
    private final boolean terminal;
    private final int total;
    private final long startNanos = System.nanoTime();
    private final int firstStep;
    private boolean drawn;

    /** Reports to {@code out}; {@code terminal} chooses the redrawn bar; the run goes from {@code firstStep} to {@code total}. */
    Progress(PrintWriter out, boolean terminal, int firstStep, int total) {
        this.out = out;
        this.terminal = terminal;
        this.firstStep = firstStep;
        this.total = total;
    }

    /** After every optimizer step: redraws the bar on a terminal, with where the optimizer state is. */
    void stepped(int step, double loss, double lr, double tokensPerS, PagingStats paging) {
        if (!terminal) {
            return;
        }
        int filled = (int) ((long) BAR_WIDTH * step / Math.max(total, 1));
        String bar = "=".repeat(filled) + (filled < BAR_WIDTH ? ">" + " ".repeat(BAR_WIDTH - filled - 1) : "");
        out.printf(Locale.ROOT, "\rstep %d/%d [%s] loss %.4f lr %.2e %.0f tok/s state %s dev %s host paged %s"
                + " ETA %s ", step, total, bar, loss, lr, tokensPerS, mib(paging.deviceBytes()),
                mib(paging.hostBytes()), mib(paging.pagedInBytes() + paging.pagedOutBytes()), eta(step));
        out.flush();
        drawn = true;
    }

    /** At every logged step: a plain line when not on a terminal. */
    void logged(TrainerState.LogEntry e) {
        if (!terminal) {
            out.printf(Locale.ROOT, "step %d/%d epoch %.2f loss %.4f lr %.3e grad_norm %.4f %.0f tok/s"
                    + " optimizer state %s on device, %s on host, %s paged/step%n", e.step(), total, e.epoch(), e.loss(),
                    e.lr(), e.gradNorm(), e.tokensPerS(), mib(e.stateDeviceBytes()), mib(e.stateHostBytes()),
                    mib(e.pagedBytesPerStep()));
        }
    }

    /** A message of its own line (a saved checkpoint, the end), keeping the bar below it. */
    void message(String line) {
        if (drawn) {
            out.println();
            drawn = false;
        }
        out.println(line);
    }

    /** Bytes as MiB with one decimal. */
    private static String mib(long bytes) {
        return String.format(Locale.ROOT, "%.1fM", bytes / (double) (1 << 20));
    }

    private String eta(int step) {
        int done = step - firstStep;
        if (done <= 0) {
            return "?";
        }
        long seconds = (long) ((System.nanoTime() - startNanos) / 1e9 * (total - step) / done);
        return String.format(Locale.ROOT, "%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60);
    }
}
