package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;
import static org.junit.jupiter.api.Assumptions.assumeTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import java.io.IOException;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/**
 * Unless {@code OMP_WAIT_POLICY} is set, the launcher exports {@code OMP_WAIT_POLICY=PASSIVE} and {@code
 * GOMP_SPINCOUNT=10000}, so that libtorch's OpenMP threads spin only briefly after an op before they sleep, instead of
 * spinning on the cores that Java's decoding threads need next. Runs the launcher's own lines under bash before a real
 * JVM whose libtorch multiplies on several threads and then idles, and reads the CPU time the process spends while
 * idle, against the same JVM without the variables (libgomp's default).
 */
class LauncherWaitPolicyTest {
    private static final String POLICY = "OMP_WAIT_POLICY";
    private static final String SPIN_COUNT = "GOMP_SPINCOUNT";
    private static final Path TASKS = Path.of("/proc/self/task");
    /** Idle windows after an op, and their length. */
    private static final int WINDOWS = 20;
    private static final long WINDOW_MS = 50;

    @Test
    void libtorchsThreadsSleepBetweenOpsUnderTheLaunchersSettings() throws Exception {
        assumeTrue(Runtime.getRuntime().availableProcessors() >= 2, "one core: libtorch runs no second thread");
        assumeTrue(Files.isDirectory(TASKS), "threads' CPU time comes from /proc (Linux)");
        String launcher = Files.readString(Path.of("..", "qlora4j"));
        Matcher export = Pattern.compile("(?ms)^if \\[ -z \"\\$\\{" + POLICY + ":-}\" ]; then$.*?^fi$")
                .matcher(launcher);
        assertTrue(export.find(), "the launcher's lines");
        assertTrue(export.start() < launcher.indexOf("jvm=(java"), "exported before the JVM starts");
        String show = "\necho \"$" + POLICY + " ${" + SPIN_COUNT + ":-unset}\"";
        assertEquals("PASSIVE 10000", firstLine(run(export.group() + show)));
        assertEquals("PASSIVE 0", firstLine(run(SPIN_COUNT + "=0\n" + export.group() + show)), "the user's count");
        assertEquals("ACTIVE unset", firstLine(run(POLICY + "=ACTIVE\n" + export.group() + show)),
                "the user's policy alone");
        String java = Path.of(System.getProperty("java.home"), "bin", "java").toString();
        String probe = "'" + java + "' -Dai.djl.offline=true -cp \"$CP\" '" + Probe.class.getName() + "'";

        long spinning = idleCpuMicros("exec " + probe);
        assumeTrue(spinning >= WINDOWS * 1000, "libtorch's threads did not spin after an op here (" + spinning
                + " us of CPU in " + WINDOWS + " idle windows): nothing for the settings to change");
        long passive = idleCpuMicros(export.group() + "\nexec " + probe);
        assertTrue(passive * 4 <= spinning, "CPU time while idle: " + passive + " us under the launcher's settings, "
                + spinning + " us without them");
    }

    /** The probe's CPU time while idle, run by a bash script without the variables in its environment. */
    private static long idleCpuMicros(String script) throws Exception {
        String out = firstLine(run(script));
        assertTrue(out.startsWith("idle_cpu_us="), out);
        return Long.parseLong(out.substring("idle_cpu_us=".length()));
    }

    private static String firstLine(List<String> lines) {
        return lines.isEmpty() ? "" : lines.get(0);
    }

    /** Standard output of a bash script that ends with status 0, run without the variables in its environment. */
    private static List<String> run(String script) throws Exception {
        ProcessBuilder builder = new ProcessBuilder("bash", "-c", script);
        builder.environment().remove(POLICY);
        builder.environment().remove(SPIN_COUNT);
        builder.environment().put("CP", System.getProperty("java.class.path"));
        return ProcessOutput.of(builder, 2);
    }

    /**
     * A JVM that multiplies {@code [256, 1024] x [1024, 1024]} with libtorch (its default thread count, one per core),
     * then after each of {@link #WINDOWS} further products sleeps {@link #WINDOW_MS} ms; prints the process's CPU time
     * during those sleeps, in microseconds.
     */
    static final class Probe {
        /**
         * The CPU time of the threads that libtorch's OpenMP runtime started, in nanoseconds: the first field of each
         * thread's {@code schedstat} (Linux; exact, where the process's CPU time counts scheduler ticks). They carry the
         * name of the thread that started them, the launcher's {@code java}; the JVM's own threads (compilers, the
         * collector) are named for their work, and their CPU time is not the runtime's. The calling thread, which
         * reads these files, is left out.
         */
        private static long cpuNanos() throws IOException {
            Path self = Path.of("/proc/thread-self").toRealPath().getFileName();
            long sum = 0;
            try (DirectoryStream<Path> tasks = Files.newDirectoryStream(TASKS)) {
                for (Path task : tasks) {
                    try {
                        if (!task.getFileName().equals(self)
                                && Files.readString(task.resolve("comm")).strip().equals("java")) {
                            sum += Long.parseLong(Files.readString(task.resolve("schedstat")).split(" ")[0]);
                        }
                    } catch (NoSuchFileException e) {
                        // a thread that ended in between: its time no longer counts for either side
                    }
                }
            }
            return sum;
        }

        public static void main(String[] args) throws Exception {
            try (NDManager manager = NDManager.newBaseManager()) {
                NDArray x = manager.randomNormal(new Shape(256, 1024));
                NDArray w = manager.randomNormal(new Shape(1024, 1024));
                for (int i = 0; i < 20; i++) {
                    x.matMul(w).close();
                }
                long idle = 0;
                for (int i = 0; i < WINDOWS; i++) {
                    x.matMul(w).close();
                    long start = cpuNanos();
                    Thread.sleep(WINDOW_MS);
                    idle += cpuNanos() - start;
                }
                System.out.println("idle_cpu_us=" + idle / 1_000);
            }
        }
    }
}
