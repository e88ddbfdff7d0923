package io.qlora4j.bench;

import io.qlora4j.quant.Simd;
import io.qlora4j.trainer.JobPlan;
import io.qlora4j.trainer.plan.ProcessOverhead;
import java.io.BufferedReader;
import java.io.IOException;
import java.io.InputStreamReader;
import java.io.UncheckedIOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;

/**
 * The measured part of a benchmark run in a fresh JVM, so that only its own memory counts: the child prints
 * {@code result.key=value} lines ({@link #result}), which the parent collects ({@link ChildProcess}); every other line
 * is passed through. A paced child ({@link #PACED}) also takes its timed steps on the parent's word ({@link
 * #awaitTurn}, {@link #stepTaken}).
 */
final class ChildJvm {
    /**
     * The heap of every measured JVM: the launcher's small initial heap ({@code -Xms32m}: the model lives off the
     * Java heap, and a large initial heap would be touched by allocation and counted in RSS) under a 1 GB cap, and,
     * as the launcher allows, direct buffers (a CPU model's packed weights) up to the machine's memory rather than
     * the heap's cap.
     */
    static final List<String> HEAP = List.of("-Xms32m", "-Xmx1g",
            "-XX:MaxDirectMemorySize=" + JobPlan.machineMemory());
    /**
     * The launcher's allocator profiles ({@code QLORA4J_ALLOCATOR}) as it exports them, its default first: the glibc
     * settings each names, as the memory plan stores them ({@link ProcessOverhead#allocatorProfiles}).
     */
    static final Map<String, Map<String, String>> ALLOCATOR_PROFILES = ProcessOverhead.allocatorProfiles("cpu");
    /**
     * The environment the {@code qlora4j} launcher exports by default, each variable unless it is set already: glibc's
     * allocator settings of the default profile, transparent huge pages for the blocks glibc maps, and libtorch's
     * OpenMP threads spinning briefly after an op before they sleep ({@link #WAIT_POLICY}, {@link #SPIN_COUNT}). A
     * bench started by the launcher passes its own settings on instead (its children inherit them), so {@code
     * QLORA4J_ALLOCATOR=speed ./qlora4j bench} measures that profile.
     */
    static final Map<String, String> LAUNCHER_ENVIRONMENT = launcherEnvironment();
    /** The OpenMP standard's variable for how idle threads wait: {@code PASSIVE}, asleep. */
    static final String WAIT_POLICY = "OMP_WAIT_POLICY";
    /** GNU libgomp's variable for how many times an idle thread spins before it sleeps; it overrides the policy. */
    static final String SPIN_COUNT = "GOMP_SPINCOUNT";
    /**
     * The environment variable that makes a child (a JVM here, or the Python step) paced: set to {@code 1}, it takes
     * its timed steps on its parent's word ({@link ChildProcess}).
     */
    static final String PACED = "QLORA4J_BENCH_PACED";
    /** The environment a paced child is started with ({@link #PACED}). */
    static final Map<String, String> PACED_ENVIRONMENT = Map.of(PACED, "1");
    private static final boolean PACED_HERE = "1".equals(System.getenv(PACED));
    private static final BufferedReader STDIN = new BufferedReader(
            new InputStreamReader(System.in, StandardCharsets.UTF_8));
    /** libtorch's intra-op thread count, passed on to the child when set here. */
    private static final String THREADS = "ai.djl.pytorch.num_threads";

    private ChildJvm() {}

    private static Map<String, String> launcherEnvironment() {
        Map<String, String> settings = new HashMap<>(ALLOCATOR_PROFILES.values().iterator().next());
        settings.put("GLIBC_TUNABLES", ProcessOverhead.glibcTunables("cpu"));
        settings.put(WAIT_POLICY, "PASSIVE");
        settings.put(SPIN_COUNT, "10000");
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

    /**
     * {@link #run(Class, List, String...)} with {@code environment} set in the child over everything else; a variable
     * given an empty value is left out of the child's environment (how a benchmark measures without a launcher
     * setting).
     */
    static Map<String, Long> run(Class<?> main, List<String> jvmOptions, Map<String, String> environment,
            String... args) throws IOException, InterruptedException {
        try (ChildProcess child = start(main, jvmOptions, environment, args)) {
            return child.finish();
        }
    }

    /**
     * Starts {@code main} as {@link #run(Class, List, Map, String...)} does and returns the child, for a parent that
     * paces its steps ({@link ChildProcess#step}; {@code environment} then sets {@link #PACED}).
     */
    static ChildProcess start(Class<?> main, List<String> jvmOptions, Map<String, String> environment,
            String... args) throws IOException {
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
        launcherEnvironment(builder); // measure what the launcher runs
        environment.forEach((key, value) -> {
            if (value.isEmpty()) {
                builder.environment().remove(key);
            } else {
                builder.environment().put(key, value);
            }
        });
        return ChildProcess.start(builder, "the child JVM (" + main.getSimpleName() + ")");
    }

    /**
     * Gives {@code builder}'s process the launcher's environment where its own has none of those variables, by the
     * launcher's rule: an environment that sets {@link #WAIT_POLICY} gets no {@link #SPIN_COUNT}, which would
     * override that policy in libgomp.
     */
    static void launcherEnvironment(ProcessBuilder builder) {
        builder.environment().putAll(launcherDefaults(builder.environment()));
    }

    /** The launcher's variables that a process whose environment is {@code own} would be given. */
    static Map<String, String> launcherDefaults(Map<String, String> own) {
        Map<String, String> added = new HashMap<>();
        LAUNCHER_ENVIRONMENT.forEach((key, value) -> {
            if (!own.containsKey(key) && !(key.equals(SPIN_COUNT) && own.containsKey(WAIT_POLICY))) {
                added.put(key, value);
            }
        });
        return added;
    }

    /** In the child: one measurement, read back by {@link #run}. */
    static void result(String key, long value) {
        System.out.println(ChildProcess.RESULT + key + "=" + value);
    }

    /**
     * In the child: where the parent paces this child's timed steps ({@link #PACED}), says so and waits for the
     * parent's word, a line on stdin or its end ({@link ChildProcess}); elsewhere returns at once.
     */
    static void awaitTurn() {
        if (PACED_HERE) {
            System.out.println(ChildProcess.PACE + ChildProcess.READY);
            try {
                STDIN.readLine();
            } catch (IOException e) {
                throw new UncheckedIOException("waiting for the parent's word", e);
            }
        }
    }

    /** In the child: where it is paced, reports the time of the timed step just taken. */
    static void stepTaken(long nanos) {
        if (PACED_HERE) {
            System.out.println(ChildProcess.PACE + ChildProcess.STEP_US + Math.round(nanos / 1e3));
        }
    }
}
