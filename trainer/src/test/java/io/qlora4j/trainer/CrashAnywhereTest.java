package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.trainer.cli.Main;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.concurrent.TimeUnit;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Real child JVMs of {@code qlora4j train}, each killed at a named point ({@link CrashPoint}: halted without any
 * cleanup, as SIGKILL does) across start-up, a step, a checkpoint save, pruning and the final write, in resumed runs
 * too; the next run resumes (or starts afresh when no checkpoint exists yet), and the chain must end with the adapter
 * and optimizer state byte for byte those of a run that was never interrupted, every checkpoint on disk complete at
 * every stage. {@code scripts/crash-test.sh} does the same with SIGKILL at random instants.
 */
class CrashAnywhereTest {
    /** The files every checkpoint of a LoRA run holds. */
    private static final List<String> CHECKPOINT_FILES = List.of("adapter_config.json", "adapter_model.safetensors",
            "optimizer.safetensors", "trainer_state.json", "training_args.yaml");

    @TempDir
    Path dir;

    private Path base;
    private Path dataset;

    @BeforeEach
    void setUp() throws Exception {
        base = TinyModel.write(dir.resolve("base"), 21);
        dataset = TinyTasks.write(dir.resolve("copy.json"), "copy", 8, 3);
    }

    private List<String> job(Path output) {
        return List.of("train", "model_name_or_path=" + base, "dataset=" + dataset, "output_dir=" + output,
                "quantization_bit=4", "lora_rank=4", "lora_dropout=0.1", "learning_rate=0.01",
                "per_device_train_batch_size=2", "seed=7", "logging_steps=1", "max_steps=6", "save_steps=2",
                "save_total_limit=2", "lr_scheduler_type=cosine", "optim=adamw_8bit");
    }

    @Test
    void everyKilledRunResumesToTheUninterruptedRunsBytes() throws Exception {
        Path straight = dir.resolve("straight");
        StringWriter err = new StringWriter();
        assertEquals(0, Main.run(new PrintWriter(new StringWriter()), new PrintWriter(err), job(straight)
                .toArray(String[]::new)), err.toString());
        // points are NAME:N, the Nth time the killed process reaches NAME (a resumed process counts from its start)
        chain(straight, "a", "startup", "checkpoint.write:2", "step:3", "prune:1", "final.rename:2");
        chain(straight, "b", "checkpoint.staged:1", "checkpoint.published:3", "final.staged:1");
    }

    /** Runs the job killed at each point in turn, each run continuing the last, then once to the end. */
    private void chain(Path straight, String name, String... points) throws Exception {
        Path out = dir.resolve(name);
        for (String point : points) {
            assertEquals(CrashPoint.KILLED, runChild(out, point), "killed at " + point);
            assertCheckpointsComplete(out);
        }
        assertEquals(0, runChild(out, null), "the last run of chain " + name);
        for (String file : List.of("adapter_model.safetensors", "adapter_config.json")) {
            assertArrayEquals(Files.readAllBytes(straight.resolve(file)), Files.readAllBytes(out.resolve(file)),
                    name + ": " + file);
        }
        for (String file : List.of("adapter_model.safetensors", "optimizer.safetensors")) {
            assertArrayEquals(Files.readAllBytes(straight.resolve("checkpoint-6").resolve(file)),
                    Files.readAllBytes(out.resolve("checkpoint-6").resolve(file)), name + ": checkpoint-6/" + file);
        }
        assertEquals(names(straight), names(out), name + ": the same files at the top");
        assertEquals(withoutSpeed(straight.resolve(MetricsLog.FILE)), withoutSpeed(out.resolve(MetricsLog.FILE)));
    }

    /** One run in a child JVM: resumed when a checkpoint exists, else started afresh over whatever a kill left. */
    private int runChild(Path out, String crashAt) throws Exception {
        List<String> args = new ArrayList<>(job(out));
        boolean resume = Files.isDirectory(out) && names(out).stream().anyMatch(n -> n.startsWith("checkpoint-"));
        args.add(resume ? "resume_from_checkpoint=true" : "overwrite_output_dir=true");
        Path log = Files.createTempFile(dir, "child-", ".log");
        Process child = ChildJvm.start(Main.class, crashAt == null ? List.of() : List.of(CrashPoint.PROPERTY + "="
                + crashAt), log, args.toArray(String[]::new));
        assertTrue(child.waitFor(120, TimeUnit.SECONDS), "child still running at " + crashAt);
        int exit = child.exitValue();
        if (exit != (crashAt == null ? 0 : CrashPoint.KILLED)) {
            throw new AssertionError("exit " + exit + " at " + crashAt + ": " + Files.readString(log));
        }
        return exit;
    }

    /** Every checkpoint-N directory of {@code out} holds every file of a checkpoint. */
    private static void assertCheckpointsComplete(Path out) throws Exception {
        if (!Files.isDirectory(out)) {
            return;
        }
        try (Stream<Path> entries = Files.list(out)) {
            for (Path checkpoint : entries.filter(p -> p.getFileName().toString().startsWith("checkpoint-")).toList()) {
                for (String file : CHECKPOINT_FILES) {
                    assertTrue(Files.isRegularFile(checkpoint.resolve(file)), checkpoint + " lacks " + file);
                }
            }
        }
    }

    /**
     * The metrics lines without the wall-clock speed, which differs between runs, and the paging traffic, which
     * counts the upload of a resumed run's optimizer state on its first step.
     */
    private static List<String> withoutSpeed(Path metrics) throws Exception {
        return Files.readAllLines(metrics).stream().map(l -> l.replaceAll(",\"tokens_per_s\":[^,}]*", "")
                .replaceAll(",\"paged_bytes_per_step\":[^,}]*", "")).toList();
    }

    private static List<String> names(Path out) throws Exception {
        try (Stream<Path> entries = Files.list(out)) {
            return entries.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
