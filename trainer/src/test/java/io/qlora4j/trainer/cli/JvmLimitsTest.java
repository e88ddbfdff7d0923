package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.trainer.TinyJob;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A JVM too small for the job (its direct buffer limit) ends the command with one line on stderr, not a stack trace. */
class JvmLimitsTest {
    @TempDir
    Path dir;

    @Test
    void directMemoryTooSmallIsOneLineNamingTheSetting() throws Exception {
        Path err = dir.resolve("stderr.txt");
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "-XX:MaxDirectMemorySize=4k", "-Dai.djl.offline=true", "-cp",
                System.getProperty("java.class.path"), Main.class.getName()));
        command.addAll(List.of(TinyJob.write(dir, 5).train("device=cpu")));
        Process process = new ProcessBuilder(command).redirectOutput(dir.resolve("stdout.txt").toFile())
                .redirectError(err.toFile()).start();
        assertTrue(process.waitFor(2, TimeUnit.MINUTES));
        List<String> lines = Files.readAllLines(err);
        assertEquals(1, process.exitValue(), String.join("\n", lines));
        assertEquals(1, lines.size(), String.join("\n", lines));
        assertTrue(lines.get(0).startsWith("qlora4j: out of Java memory (Cannot reserve "), lines.get(0));
        assertTrue(lines.get(0).contains("JAVA_OPTS=-Xmx"), lines.get(0));
    }
}
