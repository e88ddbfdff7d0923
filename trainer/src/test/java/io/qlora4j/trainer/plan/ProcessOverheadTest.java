package io.qlora4j.trainer.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.trainer.plan.ActivationModel.Recompute;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;

/** The allocator profile a plan takes follows the process's environment, as the launcher sets it. */
class ProcessOverheadTest {

    @Test
    void theSpeedAndBalancedProfilesShareGlibcsLargestThresholdAndDifferByTheTrimThreshold() {
        ProcessOverhead speed = ProcessOverhead.of("cpu",
                Map.of("MALLOC_MMAP_THRESHOLD_", "33554432", "MALLOC_TRIM_THRESHOLD_", "268435456"));
        // glibc's DEFAULT_MMAP_THRESHOLD_MAX on 64-bit: 4 MiB * sizeof(long)
        assertEquals(4L * 1024 * 1024 * Long.BYTES, speed.smallArrayBytes());
        assertEquals("speed (MALLOC_MMAP_THRESHOLD_=33554432, MALLOC_TRIM_THRESHOLD_=268435456)", speed.allocator());
        assertFalse(speed.releasesHeap());
        // an unset trim threshold is glibc's DEFAULT_TRIM_THRESHOLD, 128 KiB
        ProcessOverhead balanced = ProcessOverhead.of("cpu", Map.of("MALLOC_MMAP_THRESHOLD_", "33554432"));
        assertEquals(speed.smallArrayBytes(), balanced.smallArrayBytes());
        assertEquals("balanced (MALLOC_MMAP_THRESHOLD_=33554432, MALLOC_TRIM_THRESHOLD_=131072, the heap released"
                + " before each recomputing micro-batch)", balanced.allocator());
        assertTrue(balanced.releasesHeap());
    }

    @Test
    void anUnmeasuredOrUnsetThresholdIsPlannedAsTheLaunchersDefaultAndSaysSo() {
        ProcessOverhead unset = ProcessOverhead.of("cpu", Map.of());
        assertEquals(8L << 20, unset.smallArrayBytes());
        assertEquals("memory (MALLOC_MMAP_THRESHOLD_=8388608, MALLOC_TRIM_THRESHOLD_=131072 assumed:"
                + " MALLOC_MMAP_THRESHOLD_ is unset, not measured)", unset.allocator());
        assertFalse(unset.releasesHeap());
        ProcessOverhead other = ProcessOverhead.of("cpu", Map.of("MALLOC_MMAP_THRESHOLD_", "1048576"));
        assertEquals(unset.retainedPerMille(), other.retainedPerMille());
        assertTrue(other.allocator().contains("the environment has MALLOC_MMAP_THRESHOLD_=1048576,"
                + " MALLOC_TRIM_THRESHOLD_=131072, not measured"), other.allocator());
        assertEquals(unset.retainedPerMille(),
                ProcessOverhead.of("cpu", Map.of("MALLOC_MMAP_THRESHOLD_", "8388608")).retainedPerMille());
        assertTrue(ProcessOverhead.of("cpu", Map.of("MALLOC_MMAP_THRESHOLD_", "8388608", "MALLOC_TRIM_THRESHOLD_", "1"))
                .allocator().contains("not measured"));
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
        Matcher m = Pattern.compile("\\n\\s*(\\w+)\\) threshold=(\\d+) trim=(\\d+) ;;").matcher(launcher);
        Map<String, Map<String, String>> offered = new LinkedHashMap<>();
        while (m.find()) {
            offered.put(m.group(1), Map.of("MALLOC_MMAP_THRESHOLD_", m.group(2), "MALLOC_TRIM_THRESHOLD_", m.group(3)));
        }
        assertEquals(List.of("memory", "speed", "balanced"), List.copyOf(offered.keySet()));
        assertEquals(offered, ProcessOverhead.allocatorProfiles("cpu"));
        for (Map.Entry<String, Map<String, String>> e : offered.entrySet()) {
            ProcessOverhead o = ProcessOverhead.of("cpu", e.getValue());
            assertTrue(o.allocator().startsWith(e.getKey() + " ("), o.allocator());
            assertFalse(o.allocator().contains("not measured"), o.allocator());
            assertEquals(Long.parseLong(e.getValue().get("MALLOC_MMAP_THRESHOLD_")), o.smallArrayBytes());
            for (Recompute policy : Recompute.values()) {
                assertTrue(o.retainedPerMille().get(policy) > 0, e.getKey() + " " + policy);
            }
        }
        // the default, with no QLORA4J_ALLOCATOR, is the first profile: the one an unset threshold plans with
        assertTrue(launcher.contains("\"${QLORA4J_ALLOCATOR:-memory}\""));
    }

    @Test
    void theLauncherExportsTheTunablesTheProfilesWereMeasuredWith() throws IOException {
        String launcher = Files.readString(Path.of("..", "qlora4j"));
        assertEquals("glibc.malloc.hugetlb=1", ProcessOverhead.glibcTunables("cpu"));
        assertTrue(launcher.contains("export GLIBC_TUNABLES=\"${GLIBC_TUNABLES:-" + ProcessOverhead.glibcTunables("cpu")
                + "}\""), "the launcher's GLIBC_TUNABLES default");
        assertNull(ProcessOverhead.glibcTunables("cuda"));
    }
}
