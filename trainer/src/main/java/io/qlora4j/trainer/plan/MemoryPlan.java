package io.qlora4j.trainer.plan;

import java.util.List;
import java.util.Locale;

/**
 * The memory a training run needs, part by part, on the compute device and in host memory, and whether it fits the
 * device it is planned for. On a CPU the device is the host: every part is host memory and {@link #hostBytes} is the
 * whole process's predicted peak.
 *
 * @param device {@code cpu} or {@code cuda}
 * @param parts what the two totals sum, in the order printed
 * @param limitBytes the memory the plan must fit (the device's on CUDA, the machine's on a CPU); null when unknown
 * @param limitSource where the limit came from ({@code device_memory_gb}, the GPU, the machine)
 */
public record MemoryPlan(String device, List<Part> parts, Long limitBytes, String limitSource) {

    /** Where a part lives. */
    public enum Place {
        /** Compute-device memory (on a CPU: the process's memory, as everything). */
        DEVICE,
        /** Host memory beside a GPU (the JVM, libtorch, paged optimizer state). */
        HOST;

        /** The lower-case name used in JSON. */
        public String key() {
            return name().toLowerCase(Locale.ROOT);
        }
    }

    /**
     * One part of the plan.
     *
     * @param key the JSON name ({@code base_weights})
     * @param bytes its size
     * @param place where it lives
     * @param detail how it was counted, one line
     */
    public record Part(String key, long bytes, Place place, String detail) {}

    /** Copies the parts. */
    public MemoryPlan {
        parts = List.copyOf(parts);
    }

    /** Whether the run computes on the CPU (no separate device memory). */
    public boolean onCpu() {
        return device.equals("cpu");
    }

    /** Bytes on the compute device (0 on a CPU, where {@link #hostBytes} holds everything). */
    public long deviceBytes() {
        return onCpu() ? 0 : total(Place.DEVICE);
    }

    /** Bytes of host memory: beside a GPU the host parts, on a CPU the whole process's peak. */
    public long hostBytes() {
        return onCpu() ? Exact.sum(total(Place.DEVICE), total(Place.HOST)) : total(Place.HOST);
    }

    /** The figure the limit applies to: device bytes on CUDA, host bytes on a CPU. */
    public long limitedBytes() {
        return onCpu() ? hostBytes() : deviceBytes();
    }

    /** Whether the plan fits its limit; true when no limit is known. */
    public boolean fits() {
        return limitBytes == null || limitedBytes() <= limitBytes;
    }

    /** The limit less the planned bytes (negative when it does not fit); null without a limit. */
    public Long marginBytes() {
        return limitBytes == null ? null : limitBytes - limitedBytes();
    }

    /** The part called {@code key}, or null. */
    public Part part(String key) {
        return parts.stream().filter(p -> p.key().equals(key)).findFirst().orElse(null);
    }

    private long total(Place place) {
        long sum = 0;
        for (Part p : parts) {
            if (p.place() == place) {
                sum = Exact.sum(sum, p.bytes());
            }
        }
        return sum;
    }
}
