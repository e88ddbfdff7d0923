package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.trainer.cli.Main;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@code plot_loss: true} on a Java runtime that cannot draw: the run still publishes its adapter and records. */
class LossPlotTest {
    @TempDir
    Path dir;

    @Test
    void aRuntimeWithoutJavaDesktopWarnsAndKeepsTheAdapter() throws Exception {
        TinyJob job = TinyJob.write(dir, 5);
        Path log = dir.resolve("child.log");
        // the modules of the GPU bundle's jlink'd runtime, less java.desktop (AWT, which JFreeChart draws with)
        Process child = ChildJvm.startWith(List.of("--limit-modules",
                "java.base,java.logging,java.management,jdk.management,jdk.unsupported,java.xml"), Main.class, log,
                job.train("lora_rank=4", "per_device_train_batch_size=2", "logging_steps=1", "plot_loss=true"));
        assertTrue(child.waitFor(120, TimeUnit.SECONDS), "child still running");
        String output = Files.readString(log);
        assertEquals(0, child.exitValue(), output);
        assertTrue(output.contains("warning: plot_loss: training_loss.png not drawn"), output);
        assertTrue(Files.size(job.out().resolve("adapter_model.safetensors")) > 0, output);
        assertTrue(Files.isRegularFile(job.out().resolve(MetricsLog.FILE)), output);
        assertFalse(Files.exists(job.out().resolve(LossPlot.FILE)), output);
    }
}
