package io.qlora4j.bench;

import io.qlora4j.quant.Simd;
import io.qlora4j.trainer.plan.ProcessOverhead;
import java.io.BufferedReader;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.InputStream;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The measured part of a benchmark run in a fresh JVM, so that only its own memory counts: the child prints
 * {@code result.key=value} lines ({@link #result}), which the parent collects; every other line is passed through.
 */
final class ChildJvm {
    /**
     * The heap of every measured JVM: the launcher's small initial heap ({@code -Xms32m}: the model lives off the
     * Java heap, and a large initial heap would be touched by allocation and counted in RSS) under a 1 GB cap.
     */
    static final List<String> HEAP = List.of("-Xms32m", "-Xmx1g");
    /**
     * The launcher's allocator profiles ({@code QLORA4J_ALLOCATOR}) as it exports them, its default first: the glibc
     * settings each names, as the memory plan stores them ({@link ProcessOverhead#allocatorProfiles}).
     */
    static final Map<String, Map<String, String>> ALLOCATOR_PROFILES = ProcessOverhead.allocatorProfiles("cpu");
    /**
     * glibc's allocator settings that the {@code qlora4j} launcher exports by default, each unless it is set already:
     * the default profile, and transparent huge pages for the blocks glibc maps. A bench started by the launcher
     * passes its own settings on instead (its children inherit them), so {@code QLORA4J_ALLOCATOR=speed ./qlora4j
     * bench} measures that profile.
     */
    static final Map<String, String> LAUNCHER_ALLOCATOR = launcherAllocator();
    private static final String RESULT = "result.";
    /** libtorch's intra-op thread count, passed on to the child when set here. */
    private static final String THREADS = "ai.djl.pytorch.num_threads";

    private ChildJvm() {}

    private static Map<String, String> launcherAllocator() {
        Map<String, String> settings = new HashMap<>(ALLOCATOR_PROFILES.values().iterator().next());
        settings.put("GLIBC_TUNABLES", ProcessOverhead.glibcTunables("cpu"));
        return Map.copyOf(settings);
    }

    /**
     * Runs {@code main} with {@code args} in a new JVM with {@code jvmOptions}, this classpath, this JVM's
     * {@code ai.djl.pytorch.num_threads} and Vector API module ({@link Simd}), and the launcher's allocator settings
     * (unless the environment has them);
     * returns its results.
     */
    static Map<String, Long> run(Class<?> main, List<String> jvmOptions, String... args)
            throws IOException, InterruptedException {
        return run(main, jvmOptions, Map.of(), args);
    }

    /** {@link #run(Class, List, String...)} with {@code environment} set in the child over everything else. */
    static Map<String, Long> run(Class<?> main, List<String> jvmOptions, Map<String, String> environment,
            String... args) throws IOException, InterruptedException {
        List<String> command = new ArrayList<>();
        command.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
        command.addAll(jvmOptions);
        if (Simd.moduleLoaded()) {
            command.add(Simd.JVM_OPTION); // decode as this JVM does
        }
        String threads = System.getProperty(THREADS);
        if (threads != null) {
            command.add("-D" + THREADS + "=" + threads);
        }
        command.addAll(List.of("-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"), main.getName()));
        command.addAll(List.of(args));
        ProcessBuilder builder = new ProcessBuilder(command);
        launcherAllocator(builder); // measure what the launcher runs
        builder.environment().putAll(environment);
        return results(builder, "the child JVM (" + main.getSimpleName() + ")");
    }

    /**
     * Starts {@code builder}'s process, collects its {@code result.key=value} lines and passes its other output
     * through, and its stderr but for the JVM's incubator warning (the first line of a child given {@link Simd#MODULE},
     * as the launcher drops it); a non-zero exit is an error naming {@code name}.
     */
    static Map<String, Long> results(ProcessBuilder builder, String name) throws IOException, InterruptedException {
        Process process = builder.start();
        Thread stderr = new Thread(() -> passStderr(process.getErrorStream()), "child stderr");
        stderr.setDaemon(true);
        stderr.start();
        Map<String, Long> results = new HashMap<>();
        try (BufferedReader out = new BufferedReader(
                new InputStreamReader(process.getInputStream(), StandardCharsets.UTF_8))) {
            for (String line = out.readLine(); line != null; line = out.readLine()) {
                if (line.startsWith(RESULT)) {
                    String[] kv = line.substring(RESULT.length()).split("=", 2);
                    results.put(kv[0], Long.parseLong(kv[1]));
                } else {
                    System.out.println(line);
                }
            }
        }
        int exit = process.waitFor();
        stderr.join();
        if (exit != 0) {
            throw new IllegalStateException(name + " exited with status " + exit);
        }
        return results;
    }

    /** Copies a child's stderr to this one's, its first line unless it is the incubator warning, the rest as it comes. */
    private static void passStderr(InputStream in) {
        try (in) {
            ByteArrayOutputStream first = new ByteArrayOutputStream();
            for (int b = in.read(); b != -1; b = in.read()) {
                first.write(b);
                if (b == '\n') {
                    break;
                }
            }
            if (!first.toString(StandardCharsets.UTF_8).equals(Simd.WARNING + "\n")) {
                first.writeTo(System.err);
            }
            in.transferTo(System.err);
        } catch (IOException e) {
            System.err.println("qlora4j bench: reading a child's stderr: " + e.getMessage());
        }
    }

    /** Gives {@code builder}'s process the launcher's allocator settings where its environment has none. */
    static void launcherAllocator(ProcessBuilder builder) {
        LAUNCHER_ALLOCATOR.forEach(builder.environment()::putIfAbsent);
    }

    /** In the child: one measurement, read back by {@link #run}. */
    static void result(String key, long value) {
        System.out.println(RESULT + key + "=" + value);
    }
}
