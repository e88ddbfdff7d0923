package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * The launcher raises the JVM's direct-memory cap (by default its maximum heap, a quarter of the machine's memory) to
 * the machine's memory, where a model on the CPU keeps its packed weights, before {@code JAVA_OPTS}, which can still
 * set another. Runs the launcher's own function under bash (Linux: against {@code /proc/meminfo}) and a real JVM with
 * its option.
 */
class LauncherDirectMemoryTest {
    private static final Path MEMINFO = Path.of("/proc/meminfo");

    @Test
    void theDirectMemoryCapIsTheMachinesMemoryUnlessJavaOptsSaysOtherwise() throws Exception {
        assumeTrue(Files.isReadable(MEMINFO), "MemTotal comes from /proc/meminfo (Linux)");
        String launcher = Files.readString(Path.of("..", "qlora4j"));
        Matcher function = Pattern.compile("(?ms)^machine_memory_option\\(\\) \\{.*?^}$").matcher(launcher);
        assertTrue(function.find(), "the launcher's function");
        int added = launcher.indexOf("jvm+=(\"$direct\")");
        assertTrue(added > 0 && added < launcher.indexOf("${JAVA_OPTS:-}"), "the cap comes before JAVA_OPTS");

        long kb = Files.readAllLines(MEMINFO).stream().filter(l -> l.startsWith("MemTotal:"))
                .map(l -> Long.parseLong(l.replaceAll("[^0-9]", ""))).findFirst().orElseThrow();
        String option = run("bash", "-c", "set -euo pipefail\n" + function.group() + "\nmachine_memory_option").get(0);
        assertEquals("-XX:MaxDirectMemorySize=" + kb + "k", option);

        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        assertEquals(kb * 1024, directLimit(run(java, option, "-XX:+PrintFlagsFinal", "-version")));
        // JAVA_OPTS follows on the command line, and the JVM takes the last setting
        assertEquals(1L << 30, directLimit(run(java, option, "-XX:MaxDirectMemorySize=1g", "-XX:+PrintFlagsFinal",
                "-version")));
    }

    /** The MaxDirectMemorySize line of {@code -XX:+PrintFlagsFinal}'s table, in bytes. */
    private static long directLimit(List<String> flags) {
        return flags.stream().filter(l -> l.contains(" MaxDirectMemorySize ")).findFirst()
                .map(l -> Long.parseLong(l.split("=")[1].trim().split("\\s+")[0])).orElseThrow();
    }

    /** Standard output of a command that ends with status 0. */
    private static List<String> run(String... command) throws Exception {
        return ProcessOutput.of(new ProcessBuilder(command), 1);
    }
}
