package io.qlora4j.trainer.plan;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.EnumMap;
import java.util.LinkedHashMap;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.stream.Collectors;

/**
 * What a qlora4j process takes besides its tensors, per machine kind, as measured and stored in
 * {@code process-overhead.properties} beside this class (each entry says when, where and how it was measured):
 * the JVM and libtorch once the engine has started, and on a CPU the share of each step's freed activation memory
 * that glibc keeps in its heap. Nothing here is estimated at run time; a new machine kind is measured once
 * (docs/BENCHMARKS.md, "Memory plan against measurement", says how) and its line added.
 *
 * <p>On a CPU what glibc keeps depends on its allocator settings, which the launcher chooses by
 * {@code QLORA4J_ALLOCATOR} (README): each measured setting is a profile, named by the {@code MALLOC_MMAP_THRESHOLD_}
 * and {@code MALLOC_TRIM_THRESHOLD_} it exports (an unset trim threshold is glibc's own, 128 KiB), and a profile may
 * also hand the heap back to the kernel before each micro-batch of a recomputing step ({@link #releasesHeap}).
 * {@link #of(String, Map)} picks the profile of the process's own environment, so a plan describes the process it
 * runs in.
 *
 * @param kind the machine kind ({@code cpu}, {@code cuda})
 * @param hostBytes host memory of the process before any model array exists (JVM, libtorch, CUDA libraries)
 * @param deviceBytes device memory taken before any array exists (CUDA context, library workspaces); 0 on a CPU
 * @param allocator on a CPU, the allocator profile the figures below belong to, in words; empty elsewhere
 * @param smallArrayBytes on a CPU, glibc's mmap threshold: smaller arrays come from its heap, larger ones are
 *     mapped separately and returned when freed
 * @param retainedPerMille on a CPU, per mille of the step's small-array high water that glibc's heap keeps in
 *     addition (freed blocks it neither reuses nor returns), by {@link ActivationModel.Recompute} policy: a
 *     recomputing step frees and allocates every block's arrays again and fragments the heap more than one pass
 *     over the whole graph
 * @param releasesHeap on a CPU, whether the profile hands glibc's free heap pages back to the kernel before each
 *     micro-batch of a recomputing step ({@code TrainStep.Builder#optReleaseHeap}), which the retained factors then
 *     include
 * @param measured where and how the figures were measured
 */
public record ProcessOverhead(String kind, long hostBytes, long deviceBytes, String allocator, long smallArrayBytes,
        Map<ActivationModel.Recompute, Long> retainedPerMille, boolean releasesHeap, String measured) {

    /** The environment variable of glibc's mmap threshold, which with {@link #TRIM_THRESHOLD} names the profile. */
    public static final String MMAP_THRESHOLD = "MALLOC_MMAP_THRESHOLD_";
    /** The environment variable of glibc's trim threshold: how much free memory its heap keeps at its top. */
    public static final String TRIM_THRESHOLD = "MALLOC_TRIM_THRESHOLD_";
    /** glibc's trim threshold when {@link #TRIM_THRESHOLD} is unset (its {@code DEFAULT_TRIM_THRESHOLD}). */
    private static final String GLIBC_TRIM_THRESHOLD = "131072";
    private static final String RESOURCE = "process-overhead.properties";

    /** The stored figures of {@code kind} for the allocator settings of this process. */
    public static ProcessOverhead of(String kind) {
        return of(kind, System.getenv());
    }

    /**
     * The stored figures of {@code kind} for the allocator settings in {@code env}: the profile whose thresholds
     * {@code MALLOC_MMAP_THRESHOLD_} and {@code MALLOC_TRIM_THRESHOLD_} name, or the first (the launcher's default)
     * when they name none that was measured, which {@link #allocator} then says.
     */
    public static ProcessOverhead of(String kind, Map<String, String> env) {
        Properties p = load();
        String host = p.getProperty(kind + ".host_bytes");
        if (host == null) {
            throw new IllegalArgumentException("no process overhead is stored for machine kind " + kind);
        }
        long hostBytes = Long.parseLong(host);
        long deviceBytes = Long.parseLong(p.getProperty(kind + ".device_bytes", "0"));
        String measured = p.getProperty(kind + ".measured", "");
        Map<String, Map<String, String>> profiles = profiles(p, kind);
        if (profiles.isEmpty()) {
            return new ProcessOverhead(kind, hostBytes, deviceBytes, "", 0, retained(p, null), false, measured);
        }
        Map<String, String> set = new LinkedHashMap<>();
        set.put(MMAP_THRESHOLD, env.get(MMAP_THRESHOLD));
        set.put(TRIM_THRESHOLD, env.getOrDefault(TRIM_THRESHOLD, GLIBC_TRIM_THRESHOLD));
        String chosen = profiles.entrySet().stream().filter(e -> e.getValue().equals(set)).map(Map.Entry::getKey)
                .findFirst().orElse(profiles.keySet().iterator().next());
        Map<String, String> settings = profiles.get(chosen);
        String prefix = kind + ".allocator." + chosen + ".";
        boolean releases = Boolean.parseBoolean(p.getProperty(prefix + "release_heap"));
        String named = assignments(settings)
                + (releases ? ", the heap released before each recomputing micro-batch" : "");
        String words = settings.equals(set) ? String.format(Locale.ROOT, "%s (%s)", chosen, named)
                : String.format(Locale.ROOT, "%s (%s assumed: %s, not measured)", chosen, named,
                        set.get(MMAP_THRESHOLD) == null ? MMAP_THRESHOLD + " is unset"
                                : "the environment has " + assignments(set));
        return new ProcessOverhead(kind, hostBytes, deviceBytes, words, Long.parseLong(settings.get(MMAP_THRESHOLD)),
                retained(p, prefix), releases, measured);
    }

    /**
     * The allocator profiles measured for {@code kind}, the launcher's default first: each name with the glibc
     * environment variables it sets ({@code MALLOC_MMAP_THRESHOLD_}, {@code MALLOC_TRIM_THRESHOLD_}); empty where
     * the kind has none (a GPU). What a benchmark child is started with to run under a profile.
     */
    public static Map<String, Map<String, String>> allocatorProfiles(String kind) {
        return profiles(load(), kind);
    }

    /**
     * The {@code GLIBC_TUNABLES} that every allocator profile of {@code kind} was measured with and the launcher
     * exports by default; null where the kind has none (a GPU).
     */
    public static String glibcTunables(String kind) {
        return load().getProperty(kind + ".glibc_tunables");
    }

    private static Map<String, Map<String, String>> profiles(Properties p, String kind) {
        Map<String, Map<String, String>> out = new LinkedHashMap<>();
        String names = p.getProperty(kind + ".allocator.profiles");
        if (names != null) {
            for (String name : names.split(",")) {
                String prefix = kind + ".allocator." + name + ".";
                Map<String, String> settings = new LinkedHashMap<>();
                settings.put(MMAP_THRESHOLD, p.getProperty(prefix + "mmap_threshold"));
                settings.put(TRIM_THRESHOLD, p.getProperty(prefix + "trim_threshold"));
                out.put(name, settings);
            }
        }
        return out;
    }

    /** {@code NAME=value, NAME=value}. */
    private static String assignments(Map<String, String> settings) {
        return settings.entrySet().stream().map(e -> e.getKey() + "=" + e.getValue()).collect(Collectors.joining(", "));
    }

    private static Properties load() {
        Properties p = new Properties();
        try (InputStream in = ProcessOverhead.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException(RESOURCE + " is missing from the classpath");
            }
            p.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        return p;
    }

    /** The retained factors under {@code prefix} ({@code null}: none, all 0). */
    private static Map<ActivationModel.Recompute, Long> retained(Properties p, String prefix) {
        Map<ActivationModel.Recompute, Long> out = new EnumMap<>(ActivationModel.Recompute.class);
        for (ActivationModel.Recompute policy : ActivationModel.Recompute.values()) {
            out.put(policy, prefix == null ? 0L : Long.parseLong(p.getProperty(prefix + "retained_per_mille."
                    + policy.name().toLowerCase(Locale.ROOT))));
        }
        return out;
    }
}
