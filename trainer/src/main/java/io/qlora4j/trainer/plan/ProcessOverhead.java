package io.qlora4j.trainer.plan;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.Arrays;
import java.util.EnumMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;

/**
 * What a qlora4j process takes besides its tensors, per machine kind, as measured and stored in
 * {@code process-overhead.properties} beside this class (each entry says when, where and how it was measured):
 * the JVM and libtorch once the engine has started, and on a CPU the share of each step's freed activation memory
 * that glibc keeps in its heap. Nothing here is estimated at run time; a new machine kind is measured once
 * (docs/BENCHMARKS.md, "Memory plan against measurement", says how) and its line added.
 *
 * <p>On a CPU what glibc keeps depends on its allocator settings, which the launcher chooses by
 * {@code QLORA4J_ALLOCATOR} (README): each measured setting is a profile, named by the {@code MALLOC_MMAP_THRESHOLD_}
 * it exports. {@link #of(String, Map)} picks the profile of the process's own environment, so a plan describes the
 * process it runs in.
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
 * @param measured where and how the figures were measured
 */
public record ProcessOverhead(String kind, long hostBytes, long deviceBytes, String allocator, long smallArrayBytes,
        Map<ActivationModel.Recompute, Long> retainedPerMille, String measured) {

    /** The environment variable whose value names the allocator profile (glibc reads it too). */
    public static final String MMAP_THRESHOLD = "MALLOC_MMAP_THRESHOLD_";
    private static final String RESOURCE = "process-overhead.properties";

    /** The stored figures of {@code kind} for the allocator settings of this process. */
    public static ProcessOverhead of(String kind) {
        return of(kind, System.getenv());
    }

    /**
     * The stored figures of {@code kind} for the allocator settings in {@code env}: the profile whose threshold
     * {@code MALLOC_MMAP_THRESHOLD_} names, or the first (the launcher's default) when it names none that was
     * measured, which {@link #allocator} then says.
     */
    public static ProcessOverhead of(String kind, Map<String, String> env) {
        Properties p = new Properties();
        try (InputStream in = ProcessOverhead.class.getResourceAsStream(RESOURCE)) {
            if (in == null) {
                throw new IllegalStateException(RESOURCE + " is missing from the classpath");
            }
            p.load(in);
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
        String host = p.getProperty(kind + ".host_bytes");
        if (host == null) {
            throw new IllegalArgumentException("no process overhead is stored for machine kind " + kind);
        }
        long hostBytes = Long.parseLong(host);
        long deviceBytes = Long.parseLong(p.getProperty(kind + ".device_bytes", "0"));
        String measured = p.getProperty(kind + ".measured", "");
        String profiles = p.getProperty(kind + ".allocator.profiles");
        if (profiles == null) {
            return new ProcessOverhead(kind, hostBytes, deviceBytes, "", 0, retained(p, null), measured);
        }
        List<String> names = Arrays.asList(profiles.split(","));
        String set = env.get(MMAP_THRESHOLD);
        String chosen = names.stream()
                .filter(n -> p.getProperty(kind + ".allocator." + n + ".mmap_threshold").equals(set))
                .findFirst().orElse(names.get(0));
        String prefix = kind + ".allocator." + chosen + ".";
        String threshold = p.getProperty(prefix + "mmap_threshold");
        String words = threshold.equals(set) ? String.format(Locale.ROOT, "%s (%s=%s)", chosen, MMAP_THRESHOLD, set)
                : String.format(Locale.ROOT, "%s (%s=%s assumed: %s, not measured)", chosen, MMAP_THRESHOLD,
                        threshold, set == null ? "it is unset" : "it is " + set);
        return new ProcessOverhead(kind, hostBytes, deviceBytes, words, Long.parseLong(threshold),
                retained(p, prefix), measured);
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
