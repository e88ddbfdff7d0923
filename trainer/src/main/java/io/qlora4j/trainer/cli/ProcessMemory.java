package io.qlora4j.trainer.cli;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * The process's memory as Linux reports it in {@code /proc/self/status} (resident now, {@code VmRSS}, and at its
 * highest so far, {@code VmHWM}) beside the Java heap, for the {@code --debug} lines of long jobs that say where the
 * peak lies.
 */
final class ProcessMemory {
    private ProcessMemory() {}

    /** One line: {@code RSS 512 MB, peak 530 MB, Java heap 40 of 97 MB}, or why it cannot be read. */
    static String describe() {
        Runtime heap = Runtime.getRuntime();
        String java = String.format(Locale.ROOT, "Java heap %.0f of %.0f MB", (heap.totalMemory() - heap.freeMemory())
                / 1e6, heap.totalMemory() / 1e6);
        try {
            List<String> status = Files.readAllLines(Path.of("/proc/self/status"));
            return String.format(Locale.ROOT, "RSS %.0f MB, peak %.0f MB, %s", kb(status, "VmRSS:") / 1e3,
                    kb(status, "VmHWM:") / 1e3, java);
        } catch (IOException | RuntimeException e) {
            return "resident memory not readable here (/proc/self/status: " + e.getMessage() + "), " + java;
        }
    }

    private static long kb(List<String> status, String key) {
        return status.stream().filter(l -> l.startsWith(key)).findFirst()
                .map(l -> Long.parseLong(l.substring(key.length()).replace("kB", "").strip()))
                .orElseThrow(() -> new IllegalStateException("no " + key));
    }
}
