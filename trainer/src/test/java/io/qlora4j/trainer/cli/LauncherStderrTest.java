package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import io.qlora4j.quant.Simd;
import java.io.File;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * The launcher starts the JVM with the Vector API module, which makes the JVM print a warning line first; its filter
 * leaves a bad job's error as the one line on stderr. Runs the launcher's own filter function over a real JVM.
 */
class LauncherStderrTest {
    @TempDir
    Path dir;

    @Test
    void theIncubatorWarningIsDroppedAndTheErrorKept() throws Exception {
        assumeTrue(onPath("bash"), "the launcher is a bash script; no bash on PATH");
        String launcher = Files.readString(Path.of("..", "qlora4j"));
        assertTrue(launcher.contains("jvm+=(" + Simd.JVM_OPTION + ")"), "the launcher adds the module");
        Matcher filter = Pattern.compile("(?ms)^drop_incubator_warning\\(\\) \\{.*?^}$").matcher(launcher);
        assertTrue(filter.find(), "the launcher's filter function");
        assertTrue(launcher.contains("2> >(drop_incubator_warning >&2)"), "the launcher's JVM writes through it");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String job = "'" + java + "' " + Simd.JVM_OPTION + " -cp \"$CP\" " + Main.class.getName()
                + " train missing.yaml";

        List<String> unfiltered = stderrOf(job);
        assertEquals(2, unfiltered.size(), String.join("\n", unfiltered));
        assertEquals(Simd.WARNING, unfiltered.get(0));
        assertTrue(launcher.contains("'" + Simd.WARNING + "'"), "the launcher drops that line");

        List<String> filtered = stderrOf(filter.group() + "\nexec " + job + " 2> >(drop_incubator_warning >&2)");
        assertEquals(List.of(unfiltered.get(1)), filtered);
        assertTrue(filtered.get(0).contains("missing.yaml"), filtered.get(0));
    }

    private static boolean onPath(String command) {
        return Arrays.stream(System.getenv().getOrDefault("PATH", "").split(File.pathSeparator))
                .anyMatch(dir -> !dir.isEmpty() && Files.isExecutable(Path.of(dir, command)));
    }

    /** Stderr of a bash script, read from a file after the script (and its filter) ended. */
    private List<String> stderrOf(String script) throws IOException, InterruptedException {
        Path err = Files.createTempFile(dir, "stderr", ".txt");
        ProcessBuilder builder = new ProcessBuilder("bash", "-c", script).directory(dir.toFile())
                .redirectOutput(dir.resolve("stdout.txt").toFile()).redirectError(err.toFile());
        builder.environment().put("CP", System.getProperty("java.class.path"));
        Process process = builder.start();
        assertTrue(process.waitFor(2, TimeUnit.MINUTES));
        assertEquals(1, process.exitValue(), Files.readString(err));
        return Files.readAllLines(err);
    }
}
