package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.trainer.TinyModel;
import io.qlora4j.trainer.TinyTasks;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainCommandTest {
    @TempDir
    Path dir;

    private final CliRun cli = new CliRun();


    @Test
    void trainJobFileWithOverridesThenRefusesTheSameOutputDirInOneLine() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 5);
        Path data = TinyTasks.write(dir.resolve("copy.json"), "copy", 4, 2);
        Path output = dir.resolve("out");
        Path yaml = dir.resolve("job.yaml");
        Files.writeString(yaml, "model_name_or_path: " + base + "\ndataset: " + data + "\noutput_dir: " + output
                + "\nfinetuning_type: full\nlearning_rate: 1.0e-3\nmax_steps: 100\nlogging_steps: 1\n");
        assertEquals(0, cli.run("train", yaml.toString(), "max_steps=2"), cli.err());
        assertTrue(cli.out().contains("step 2/2 epoch"), cli.out());
        assertTrue(Files.isRegularFile(output.resolve("model.safetensors")));
        assertEquals(1, cli.run("train", yaml.toString(), "max_steps=2"));
        assertEquals("qlora4j train: output_dir " + output + " exists and is not empty; set overwrite_output_dir: true"
                + " to replace it or resume_from_checkpoint: true to continue it", cli.err().strip());
    }

    @Test
    void divergingRunExitsNonZeroWithOneLine() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 5);
        Path data = TinyTasks.write(dir.resolve("copy.json"), "copy", 4, 2);
        int rc = cli.run("train", "model_name_or_path=" + base, "dataset=" + data, "output_dir=" + dir.resolve("out"),
                "finetuning_type=full", "learning_rate=1e38", "max_grad_norm=0", "max_steps=3");
        assertEquals(1, rc);
        assertTrue(cli.err().startsWith("qlora4j train: loss is NaN at step 2"), cli.err());
        assertEquals(1, cli.err().strip().lines().count(), cli.err());
    }
}
