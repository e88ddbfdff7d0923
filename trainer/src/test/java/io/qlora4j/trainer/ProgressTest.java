package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.optim.PagingStats;
import java.io.PrintWriter;
import java.io.StringWriter;
import org.junit.jupiter.api.Test;

class ProgressTest {
    private final StringWriter text = new StringWriter();

    @Test
    void terminalRedrawsOneBarLinePerStepAndKeepsMessagesOnTheirOwnLines() {
        Progress progress = new Progress(new PrintWriter(text, true), true, 0, 4);
        progress.stepped(1, 2.0, 1e-3, 1500, new PagingStats(3 << 20, 3 << 20, 1 << 19, 1 << 20, 1 << 20, 3 << 20));
        progress.logged(new TrainerState.LogEntry(1, 0.5, 2.0, 1e-3, 0.7, 1500, 3 << 20, 1 << 19, 2 << 20));
        progress.message("saved checkpoint-1");
        String out = text.toString();
        assertTrue(out.startsWith("\rstep 1/4 [======>                 ] loss 2.0000 lr 1.00e-03 1500 tok/s"
                + " state 3.0M dev 0.5M host paged 2.0M ETA 0:00:0"), out);
        assertTrue(out.endsWith(" \nsaved checkpoint-1\n"), out);
    }

    @Test
    void logFileGetsOnePlainLinePerLoggedStepAndNoBar() {
        Progress progress = new Progress(new PrintWriter(text, true), false, 0, 4);
        progress.stepped(1, 2.0, 1e-3, 1500, new PagingStats(-1, 0, 0, 0, 0, 0));
        progress.logged(new TrainerState.LogEntry(2, 0.5, 1.5, 1e-3, 0.7, 1234.4, 5 << 20, 3 << 19, 1 << 20));
        assertEquals("step 2/4 epoch 0.50 loss 1.5000 lr 1.000e-03 grad_norm 0.7000 1234 tok/s optimizer state 5.0M"
                + " on device, 1.5M on host, 1.0M paged/step\n", text.toString());
    }
}
