package io.qlora4j.bench;

import io.qlora4j.quant.Simd;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.ZonedDateTime;
import java.time.format.DateTimeFormatter;
import java.util.Map;
import java.util.TreeMap;
import java.util.stream.Collectors;
import java.util.stream.Stream;

/** The header every benchmark prints first: when, on what CPU and OS, with which JVM, so figures can be compared. */
final class Machine {
    private Machine() {}

    /** Date, cores, CPU model (from {@code /proc/cpuinfo}), OS and JVM, one per line. */
    static String describe() {
        return String.join("\n",
                "date:  " + ZonedDateTime.now().format(DateTimeFormatter.ISO_OFFSET_DATE_TIME),
                "cpu:   " + name() + " available",
                "os:    " + System.getProperty("os.name") + " " + System.getProperty("os.version") + " "
                        + System.getProperty("os.arch"),
                "java:  " + System.getProperty("java.vm.name") + " " + System.getProperty("java.runtime.version"),
                "env:   " + launcherSettings(),
                "decode: " + Simd.describe());
    }

    /**
     * The child JVMs' settings of what the launcher exports (glibc's allocator, OpenMP's waiting): the launcher's
     * unless the environment sets them.
     */
    private static String launcherSettings() {
        Map<String, String> settings = new TreeMap<>(ChildJvm.launcherDefaults(System.getenv()));
        System.getenv().forEach((key, value) -> {
            if (ChildJvm.LAUNCHER_ENVIRONMENT.containsKey(key) || key.startsWith("MALLOC_")) {
                settings.put(key, value);
            }
        });
        return settings.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(" "))
                + " (in the child JVMs)";
    }

    /** The CPU model and the cores this JVM may use, e.g. {@code AMD EPYC, 2 cores}: what a table row names. */
    static String name() {
        return cpuModel() + ", " + Runtime.getRuntime().availableProcessors() + " cores";
    }

    private static String cpuModel() {
        try (Stream<String> lines = Files.lines(Path.of("/proc/cpuinfo"))) {
            return lines.filter(l -> l.startsWith("model name"))
                    .map(l -> l.substring(l.indexOf(':') + 1).trim())
                    .findFirst().orElse("unknown CPU");
        } catch (IOException e) {
            return "unknown CPU (no /proc/cpuinfo)";
        }
    }
}
