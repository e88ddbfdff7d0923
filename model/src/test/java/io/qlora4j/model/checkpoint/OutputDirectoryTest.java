package io.qlora4j.model.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class OutputDirectoryTest {
    @TempDir
    Path dir;

    private List<String> names() throws Exception {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    /**
     * A killed export leaves its hidden staging directory; the next job writing the same target deletes it when the
     * process that made it is gone (a pid above Linux's largest, 2^22), and leaves a live process's alone.
     */
    @Test
    void stagingLeftByAKilledJobGoesWithTheNextOne() throws Exception {
        Path dead = Files.createDirectories(dir.resolve(".out.partial-999999999-123"));
        Files.writeString(dead.resolve("model.safetensors"), "partial");
        Path live = Files.createDirectories(dir.resolve(".out.partial-" + ProcessHandle.current().pid() + "-456"));
        Path other = Files.createDirectories(dir.resolve(".other.partial-999999999-789"));
        try (OutputDirectory out = OutputDirectory.create(dir.resolve("out"))) {
            Files.writeString(out.path().resolve("config.json"), "{}");
            assertFalse(Files.exists(dead));
            assertTrue(Files.isDirectory(live) && Files.isDirectory(other));
            out.commit();
        }
        assertEquals(List.of(other.getFileName().toString(), live.getFileName().toString(), "out"), names());
        assertTrue(Files.isRegularFile(dir.resolve("out").resolve("config.json")));
    }

    /** Closed without a commit, the staging directory goes and the target is never made. */
    @Test
    void anUncommittedOutputLeavesNothing() throws Exception {
        try (OutputDirectory out = OutputDirectory.create(dir.resolve("out"))) {
            Files.writeString(out.path().resolve("config.json"), "{}");
        }
        assertEquals(List.of(), names());
    }
}
