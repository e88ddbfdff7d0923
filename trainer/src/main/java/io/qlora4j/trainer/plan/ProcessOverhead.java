package io.qlora4j.trainer.plan;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.util.EnumMap;
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
 * @param kind the machine kind ({@code cpu}, {@code cuda})
 * @param hostBytes host memory of the process before any model array exists (JVM, libtorch, CUDA libraries)
 * @param deviceBytes device memory taken before any array exists (CUDA context, library workspaces); 0 on a CPU
 * @param smallArrayBytes on a CPU, glibc's mmap threshold: smaller arrays come from its heap, larger ones are
 *     mapped separately and returned when freed (the launcher sets {@code MALLOC_MMAP_THRESHOLD_})
 * @param retainedPerMille on a CPU, per mille of the step's small-array high water that glibc's heap keeps in
 *     addition (freed blocks it neither reuses nor returns), by {@link ActivationModel.Recompute} policy: a
 *     recomputing step frees and allocates every block's arrays again and fragments the heap more than one pass
 *     over the whole graph
 * @param measured where and how the figures were measured
 */
public record ProcessOverhead(String kind, long hostBytes, long deviceBytes, long smallArrayBytes,
        Map<ActivationModel.Recompute, Long> retainedPerMille, String measured) {

    private static final String RESOURCE = "process-overhead.properties";

    /** The stored figures of {@code kind}. */
    public static ProcessOverhead of(String kind) {
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
        return new ProcessOverhead(kind, Long.parseLong(host), Long.parseLong(p.getProperty(kind + ".device_bytes", "0")),
                Long.parseLong(p.getProperty(kind + ".small_array_bytes", "0")),
                retained(p, kind), p.getProperty(kind + ".measured", ""));
    }

    private static Map<ActivationModel.Recompute, Long> retained(Properties p, String kind) {
        Map<ActivationModel.Recompute, Long> out = new EnumMap<>(ActivationModel.Recompute.class);
        for (ActivationModel.Recompute policy : ActivationModel.Recompute.values()) {
            out.put(policy, Long.parseLong(p.getProperty(kind + ".retained_per_mille."
                    + policy.name().toLowerCase(Locale.ROOT), "0")));
        }
        return out;
    }
}
