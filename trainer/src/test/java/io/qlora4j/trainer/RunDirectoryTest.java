package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.trainer.cli.Main;
import io.qlora4j.trainer.config.ConfigException;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.concurrent.TimeUnit;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link RunDirectory}: the output_dir lock, and what a run leaves behind. */
class RunDirectoryTest {
    @TempDir
    Path dir;

    @Test
    void trainOnADirectoryAnotherProcessHoldsIsRefusedNamingItAndRunsOnceThatProcessIsKilled() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 3);
        Path data = TinyTasks.write(dir.resolve("copy.json"), "copy", 4, 2);
        Path out = dir.resolve("out");
        Path log = dir.resolve("holder.log");
        Process holder = ChildJvm.start(RunDirectoryHolder.class, List.of(), log, out.toString());
        try {
            for (long until = System.nanoTime() + TimeUnit.SECONDS.toNanos(60); !Files.readString(log).contains("locked");
                    Thread.sleep(20)) {
                assertTrue(holder.isAlive() && System.nanoTime() < until, Files.readString(log));
            }
            String[] job = {"train", "model_name_or_path=" + base, "dataset=" + data, "output_dir=" + out,
                "finetuning_type=full", "max_steps=2"};
            StringWriter err = new StringWriter();
            assertEquals(1, Main.run(new PrintWriter(new StringWriter()), new PrintWriter(err), job));
            assertTrue(err.toString().strip().matches("qlora4j train: output_dir " + out + " is in use by another"
                    + " run \\(pid " + holder.pid() + " on .+, started .+\\); wait for it to end or choose another"
                    + " output_dir"), err.toString());
            holder.destroyForcibly(); // SIGKILL: the system drops its lock, the lock file stays
            assertTrue(holder.waitFor(60, TimeUnit.SECONDS));
            assertTrue(Files.isRegularFile(out.resolve(DirectoryLock.FILE)));
            err.getBuffer().setLength(0);
            assertEquals(0, Main.run(new PrintWriter(new StringWriter()), new PrintWriter(err), job), err.toString());
            assertTrue(Files.isRegularFile(out.resolve("model.safetensors")));
        } finally {
            holder.destroyForcibly();
        }
    }

    @Test
    void secondOpenInTheSameProcessIsRefusedUntilTheFirstCloses() throws Exception {
        Path out = dir.resolve("out");
        try (RunDirectory first = RunDirectory.open(out, false, false)) {
            ConfigException refused = assertThrows(ConfigException.class, () -> RunDirectory.open(out, false, true));
            assertEquals("output_dir " + out + " is in use by another run (this process); wait for it to end or"
                    + " choose another output_dir", refused.getMessage());
        }
        assertFalse(Files.exists(out), "created and left empty: removed again");
        Path deep = dir.resolve("a/b/out");
        RunDirectory.open(deep, false, false).close();
        assertFalse(Files.exists(dir.resolve("a")), "with the folders created for it");
        Files.createDirectories(out);
        try (RunDirectory again = RunDirectory.open(out, false, false)) {
            assertTrue(Files.isRegularFile(out.resolve(DirectoryLock.FILE)));
        }
        assertTrue(Files.isDirectory(out), "a directory the run did not create stays");
    }

    @Test
    void outputDirThatIsAFileIsRefusedSayingSo() throws Exception {
        Path file = Files.writeString(dir.resolve("out"), "x");
        ConfigException refused = assertThrows(ConfigException.class, () -> RunDirectory.open(file, false, false));
        assertEquals("output_dir " + file + " is a file; expected a directory (it is created when missing)",
                refused.getMessage());
        assertEquals("x", Files.readString(file));
        Path below = file.resolve("sub");
        refused = assertThrows(ConfigException.class, () -> RunDirectory.open(below, false, false));
        assertEquals("output_dir " + below + ": cannot create the directory (" + below + ": Not a directory)",
                refused.getMessage());
    }

    @Test
    void staleLockFileOfAKilledRunDoesNotBlockAndCountsAsEmpty() throws Exception {
        Path out = Files.createDirectories(dir.resolve("out"));
        Files.writeString(out.resolve(DirectoryLock.FILE), "12345 on elsewhere, started 2020-01-01T00:00:00Z\n");
        try (RunDirectory fresh = RunDirectory.open(out, false, false)) {
            assertTrue(fresh.checkpoints().isEmpty());
        }
    }

    @Test
    void saveThatFailsLikeAFullDiskLeavesNothingAndNamesWhatIsIntact() throws Exception {
        Path out = dir.resolve("out");
        try (RunDirectory run = RunDirectory.open(out, false, false)) {
            run.saveCheckpoint(2, d -> Files.writeString(d.resolve(TrainerState.FILE), "{}"), null);
            RunDirectory.Contents full = d -> {
                Files.writeString(d.resolve("adapter_model.safetensors"), "partial");
                throw new java.io.IOException(d.resolve("adapter_model.safetensors") + ": No space left on device");
            };
            io.qlora4j.model.ModelException e = assertThrows(io.qlora4j.model.ModelException.class,
                    () -> run.saveCheckpoint(4, full, null));
            assertEquals(out.resolve("checkpoint-4") + ": not written (" + out.resolve("checkpoint-4")
                    .resolve("adapter_model.safetensors") + ": No space left on device); the checkpoints before it are"
                    + " intact", e.getMessage());
            e = assertThrows(io.qlora4j.model.ModelException.class, () -> run.publish(full));
            assertEquals(out + ": not written (" + out.resolve("adapter_model.safetensors") + ": No space left on"
                    + " device); the last checkpoint is intact, and resume_from_checkpoint: true writes the output"
                    + " from it", e.getMessage());
            try (var entries = Files.list(out)) {
                assertEquals(List.of(DirectoryLock.FILE, "checkpoint-2"),
                        entries.map(p -> p.getFileName().toString()).sorted().toList(), "no staged leftovers");
            }
            assertEquals(List.of(out.resolve("checkpoint-2")), run.checkpoints());
        }
    }
}
