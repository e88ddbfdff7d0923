package io.qlora4j.trainer.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import java.util.stream.Stream;

/**
 * The process's memory as Linux reports it in {@code /proc/self/status} (resident now, {@code VmRSS}, and at its
 * highest so far, {@code VmHWM}) beside the Java heap, for the {@code --debug} lines of long jobs that say where the
 * peak lies, and for the benchmarks that measure a run's peak.
 */
public final class ProcessMemory {
    private ProcessMemory() {}

    /** One line: {@code RSS 512 MB, peak 530 MB, Java heap 40 of 97 MB}, or why it cannot be read. */
    static String describe() {
        Runtime heap = Runtime.getRuntime();
        String java = String.format(Locale.ROOT, "Java heap %.0f of %.0f MB", (heap.totalMemory() - heap.freeMemory())
                / 1e6, heap.totalMemory() / 1e6);
        try {
            return String.format(Locale.ROOT, "RSS %.0f MB, peak %.0f MB, %s", statusBytes("VmRSS") / 1e6,
                    statusBytes("VmHWM") / 1e6, java);
        } catch (RuntimeException e) {
            return "resident memory not readable here (" + e.getMessage() + "), " + java;
        }
    }

    /**
     * A size in {@code /proc/self/status} ({@code VmRSS}, {@code VmHWM}, ...), in bytes; IllegalStateException where
     * it cannot be read (not Linux).
     */
    public static long statusBytes(String key) {
        try (Stream<String> lines = Files.lines(Path.of("/proc/self/status"))) {
            String line = lines.filter(l -> l.startsWith(key + ":")).findFirst()
                    .orElseThrow(() -> new IllegalStateException("no " + key + " in /proc/self/status"));
            return Long.parseLong(line.replaceAll("[^0-9]", "")) * 1024;
        } catch (IOException e) {
            throw new IllegalStateException("cannot read /proc/self/status (Linux only): " + e.getMessage(), e);
        }
    }
}
