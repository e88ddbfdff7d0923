package io.qlora4j.trainer;

import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/** Starts a class of the test classpath in a fresh JVM, as the {@code qlora4j} launcher would (offline, one libtorch thread). */
final class ChildJvm {
    private ChildJvm() {}

    /** Starts {@code main} with {@code args} and the system properties {@code properties} ("key=value"). */
    static Process start(Class<?> main, List<String> properties, Path log, String... args) throws IOException {
        return startWith(properties.stream().map(p -> "-D" + p).toList(), main, log, args);
    }

    /** Starts {@code main} with {@code args} and the JVM options {@code options} ({@code --limit-modules ...}). */
    static Process startWith(List<String> options, Class<?> main, Path log, String... args) throws IOException {
        List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                .toString(), "-Xms32m", "-Xmx512m", "-XX:TieredStopAtLevel=1", "-Dai.djl.offline=true",
                "-Dai.djl.pytorch.num_threads=1", "-Dai.djl.pytorch.num_interop_threads=1"));
        command.addAll(options);
        command.addAll(List.of("-cp", System.getProperty("java.class.path"), main.getName()));
        command.addAll(List.of(args));
        return new ProcessBuilder(command).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    }
}
