package io.qlora4j.trainer.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.trainer.plan.ActivationModel.Recompute;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Map;
import java.util.TreeMap;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The allocator profile a plan takes follows the process's environment, as the launcher sets it. */
class ProcessOverheadTest {

    @Test
    void theSpeedProfileIsPlannedWithGlibcsLargestThreshold() {
        ProcessOverhead o = ProcessOverhead.of("cpu", Map.of("MALLOC_MMAP_THRESHOLD_", "33554432"));
        // glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: 4 MiB * sizeof(long)
        assertEquals(4L * 1024 * 1024 * Long.BYTES, o.smallArrayBytes());
        assertEquals("speed (MALLOC_MMAP_THRESHOLD_=33554432)", o.allocator());
    }

    @Test
    void anUnmeasuredOrUnsetThresholdIsPlannedAsTheLaunchersDefaultAndSaysSo() {
        ProcessOverhead unset = ProcessOverhead.of("cpu", Map.of());
        assertEquals(8L << 20, unset.smallArrayBytes());
        assertEquals("memory (MALLOC_MMAP_THRESHOLD_=8388608 assumed: it is unset, not measured)", unset.allocator());
        ProcessOverhead other = ProcessOverhead.of("cpu", Map.of("MALLOC_MMAP_THRESHOLD_", "1048576"));
        assertEquals(unset.retainedPerMille(), other.retainedPerMille());
        assertTrue(other.allocator().contains("it is 1048576, not measured"), other.allocator());
        assertEquals(unset.retainedPerMille(),
                ProcessOverhead.of("cpu", Map.of("MALLOC_MMAP_THRESHOLD_", "8388608")).retainedPerMille());
    }

    @Test
    void aGpuHasNoAllocatorProfile() {
        ProcessOverhead cuda = ProcessOverhead.of("cuda", Map.of("MALLOC_MMAP_THRESHOLD_", "33554432"));
        assertEquals("", cuda.allocator());
        assertEquals(0, cuda.smallArrayBytes());
        cuda.retainedPerMille().values().forEach(v -> assertEquals(0L, v));
    }

    @Test
    void everyProfileTheLauncherOffersIsMeasured() throws IOException {
        String launcher = Files.readString(Path.of("..", "qlora4j"));
        Matcher m = Pattern.compile("\\n\\s*(\\w+)\\) threshold=(\\d+)\\b").matcher(launcher);
        Map<String, String> offered = new TreeMap<>();
        while (m.find()) {
            offered.put(m.group(1), m.group(2));
        }
        assertEquals(Map.of("memory", "8388608", "speed", "33554432"), offered);
        for (Map.Entry<String, String> e : offered.entrySet()) {
            ProcessOverhead o = ProcessOverhead.of("cpu", Map.of("MALLOC_MMAP_THRESHOLD_", e.getValue()));
            assertTrue(o.allocator().startsWith(e.getKey() + " ("), o.allocator());
            assertEquals(Long.parseLong(e.getValue()), o.smallArrayBytes());
            for (Recompute policy : Recompute.values()) {
                assertTrue(o.retainedPerMille().get(policy) > 0, e.getKey() + " " + policy);
            }
        }
        // the default, with no QLORA4J_ALLOCATOR, is the first profile: the one an unset threshold plans with
        assertTrue(launcher.contains("\"${QLORA4J_ALLOCATOR:-memory}\""));
    }
}
