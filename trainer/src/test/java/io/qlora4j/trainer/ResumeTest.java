package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.ModelException;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.BeforeEach;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Resuming a QLoRA run: an unfinished final output is finished, and every broken checkpoint file is named. */
class ResumeTest {
    @TempDir
    Path dir;

    private Path base;
    private Path dataset;
    private Path straight;
    private final StringWriter log = new StringWriter();

    @BeforeEach
    void setUp() throws Exception {
        base = TinyModel.write(dir.resolve("base"), 13);
        dataset = TinyTasks.write(dir.resolve("copy.json"), "copy", 6, 2);
        straight = dir.resolve("straight");
        assertTrue(train(straight).completed());
    }

    private List<String> job(Path output, String... more) {
        List<String> keys = new ArrayList<>(List.of("model_name_or_path=" + base, "dataset=" + dataset,
                "output_dir=" + output, "quantization_bit=4", "lora_rank=4", "lora_target=q_proj,down_proj",
                "learning_rate=0.01", "per_device_train_batch_size=2", "seed=5", "logging_steps=1", "max_steps=3",
                "save_steps=2"));
        keys.addAll(List.of(more));
        return keys;
    }

    private TrainingResult train(Path output, String... more) throws Exception {
        return Trainer.train(JobConfig.load(null, job(output, more)), new PrintWriter(log, true), false);
    }

    @Test
    void resumeFromTheFinalCheckpointWritesTheMissingOrHalfWrittenOutput() throws Exception {
        assertTrue(Files.isDirectory(straight.resolve("checkpoint-3")), "the last step is saved although save_steps is 2");
        byte[] adapter = Files.readAllBytes(straight.resolve("adapter_model.safetensors"));
        byte[] state = Files.readAllBytes(straight.resolve(TrainerState.FILE));
        // killed after checkpoint-3 before the final write: nothing at the top
        Files.delete(straight.resolve("adapter_model.safetensors"));
        Files.delete(straight.resolve("adapter_config.json"));
        Files.delete(straight.resolve(TrainerState.FILE));
        log.getBuffer().setLength(0);
        TrainingResult resumed = train(straight, "resume_from_checkpoint=true");
        assertTrue(resumed.completed(), resumed.failure());
        assertArrayEquals(adapter, Files.readAllBytes(straight.resolve("adapter_model.safetensors")));
        assertArrayEquals(state, Files.readAllBytes(straight.resolve(TrainerState.FILE)));
        assertTrue(log.toString().contains("training was complete at " + straight.resolve("checkpoint-3")), log.toString());
        assertFalse(log.toString().contains("step 3/3"), "no step is trained again");
        // killed half way through the renames: an adapter config without its weights or trainer state
        Files.delete(straight.resolve("adapter_model.safetensors"));
        Files.delete(straight.resolve(TrainerState.FILE));
        assertTrue(train(straight, "resume_from_checkpoint=true").completed());
        assertArrayEquals(adapter, Files.readAllBytes(straight.resolve("adapter_model.safetensors")));
    }

    /** A copy of the straight run's checkpoint-2 in its own folder, to break. */
    private Path checkpointCopy(String name) throws Exception {
        Path copy = Files.createDirectories(dir.resolve(name).resolve("checkpoint-2"));
        try (Stream<Path> files = Files.list(straight.resolve("checkpoint-2"))) {
            for (Path f : files.toList()) {
                Files.copy(f, copy.resolve(f.getFileName()));
            }
        }
        return copy;
    }

    private String refusal(Path checkpoint, Class<? extends Exception> type, String... more) {
        List<String> keys = new ArrayList<>(List.of(more));
        keys.add("resume_from_checkpoint=" + checkpoint);
        Path out = checkpoint.resolveSibling("out");
        String message = assertThrows(type, () -> train(out, keys.toArray(String[]::new))).getMessage();
        assertFalse(message.contains("\n") || message.contains("REDACTED"), message);
        assertFalse(Files.exists(out), "nothing written");
        return message;
    }

    @Test
    void brokenTrainerStateIsNamedWithWhatIsWrong() throws Exception {
        Path truncated = checkpointCopy("truncated");
        Path file = truncated.resolve(TrainerState.FILE);
        Files.writeString(file, Files.readString(file).substring(0, 40));
        assertTrue(refusal(truncated, ConfigException.class).startsWith(file + ": not a trainer state at line "));

        Path empty = checkpointCopy("empty");
        Files.writeString(empty.resolve(TrainerState.FILE), "{}");
        String missing = refusal(empty, ConfigException.class);
        assertTrue(missing.startsWith(empty.resolve(TrainerState.FILE) + ": not a trainer state")
                && missing.contains("'global_step'"), missing);

        Path negative = checkpointCopy("negative");
        Path state = negative.resolve(TrainerState.FILE);
        Files.writeString(state, Files.readString(state).replaceFirst("\"global_step\" : 2", "\"global_step\" : -1"));
        assertEquals(state + ": global_step is -1; expected 0 or more", refusal(negative, ConfigException.class));
    }

    @Test
    void nanInTheOptimizerStateOrTheAdapterIsNamedByFileAndTensor() throws Exception {
        Path optimizer = checkpointCopy("optimizer");
        String tensor = Poison.firstValue(optimizer.resolve(OptimizerFile.FILE), "optimizer");
        assertEquals(optimizer.resolve(OptimizerFile.FILE) + ": tensor '" + tensor + "' holds NaN at element 0;"
                + " expected finite numbers", refusal(optimizer, ModelException.class));
        Path adapter = checkpointCopy("adapter");
        tensor = Poison.firstValue(adapter.resolve("adapter_model.safetensors"), "adapter_model");
        assertEquals(adapter.resolve("adapter_model.safetensors") + ": tensor '" + tensor + "' holds NaN at element 0;"
                + " expected finite numbers", refusal(adapter, ModelException.class));
    }

    @Test
    void jobThatContradictsTheCheckpointIsRefusedInsteadOfIgnored() throws Exception {
        Path checkpoint = straight.resolve("checkpoint-2");
        assertEquals("lora_rank: " + checkpoint + " was trained with 4, the job says 8; training continues that"
                + " adapter, so leave lora_rank unset or give its value",
                refusal(checkpoint, ConfigException.class, "lora_rank=8"));
        assertEquals("max_steps: the checkpoint " + checkpoint + " is at step 2, past the 1 steps this job plans;"
                + " resume with max_steps of at least 2", refusal(checkpoint, ConfigException.class, "max_steps=1"));
        // the data position counts batches of 2: resuming with another size would skip the wrong records
        assertEquals("per_device_train_batch_size: the checkpoint " + checkpoint + " was trained with batches of 2,"
                + " the job says 3; resume with the same batch size",
                refusal(checkpoint, ConfigException.class, "per_device_train_batch_size=3"));
        // data_seed draws another epoch order; unset it is the seed, so setting it to the seed resumes
        assertEquals("data_seed: the checkpoint " + checkpoint + " drew its data order with seed 5, the job says 6;"
                + " resume with the same order", refusal(checkpoint, ConfigException.class, "data_seed=6"));
    }
}
