package io.qlora4j.trainer;

import java.io.PrintWriter;
import java.util.Locale;

/**
 * What a running job shows: on a terminal one progress line redrawn after every step (step/total, bar,
 * loss, lr, tokens/s, ETA); otherwise a plain line per logged step, for log files and CI.
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

    /** After every optimizer step: redraws the bar on a terminal. */
    void stepped(int step, double loss, double lr, double tokensPerS) {
        if (!terminal) {
            return;
        }
        int filled = (int) ((long) BAR_WIDTH * step / Math.max(total, 1));
        String bar = "=".repeat(filled) + (filled < BAR_WIDTH ? ">" + " ".repeat(BAR_WIDTH - filled - 1) : "");
        out.printf(Locale.ROOT, "\rstep %d/%d [%s] loss %.4f lr %.2e %.0f tok/s ETA %s ", step, total, bar, loss, lr,
                tokensPerS, eta(step));
        out.flush();
        drawn = true;
    }

    /** At every logged step: a plain line when not on a terminal. */
    void logged(TrainerState.LogEntry e) {
        if (!terminal) {
            out.printf(Locale.ROOT, "step %d/%d epoch %.2f loss %.4f lr %.3e grad_norm %.4f %.0f tok/s%n", e.step(), total,
                    e.epoch(), e.loss(), e.lr(), e.gradNorm(), e.tokensPerS());
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

    private String eta(int step) {
        int done = step - firstStep;
        if (done <= 0) {
            return "?";
        }
        long seconds = (long) ((System.nanoTime() - startNanos) / 1e9 * (total - step) / done);
        return String.format(Locale.ROOT, "%d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60);
    }
}
