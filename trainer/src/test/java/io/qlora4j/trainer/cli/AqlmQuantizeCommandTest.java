package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.checkpoint.TinyModels;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class AqlmQuantizeCommandTest {
    @TempDir
    Path dir;

    private final CliRun cli = new CliRun();

    private String[] quantize(Path model, Path data, Path target) {
        return new String[] {"quantize", "model_name_or_path=" + model, "export_dir=" + target,
            "quantization_method=aqlm", "num_codebooks=2", "nbits_per_codebook=4", "in_group_size=8",
            "dataset=" + data, "cutoff_len=8", "aqlm_nsamples=4", "aqlm_steps_per_epoch=3", "aqlm_max_epochs=2",
            "aqlm_init_max_iter=3", "aqlm_finetune_max_epochs=1", "aqlm_lr=0.001", "seed=3"};
    }

    @Test
    void quantizeWritesAnAqlmCheckpointThatEvaluatesAndIsTheSameForASeed() throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        Path data = dir.resolve("calib.txt");
        Files.writeString(data, "w5 w9 w3 w11 w40 w41 w7 w8\nw30 w22 w12 w13 w14 w15 w16 w17 w18\n");
        Path a = dir.resolve("a");
        assertEquals(0, cli.run(quantize(model, data, a)), cli.err());
        assertTrue(cli.out().contains("AQLM 2x4 g8: 4 calibration windows of 8 tokens"), cli.out());
        assertTrue(cli.out().contains("7/7 model.layers.0.mlp.down_proj relative error"), cli.out());
        assertTrue(cli.out().contains("quantized 7 linears (34,816 parameters) to AQLM 2x4 g8"), cli.out());
        assertTrue(cli.out().contains("layer 0 fine-tune epoch 1: mean squared error"), cli.out());

        Path text = dir.resolve("eval.txt");
        Files.writeString(text, "w5 w9 w3 w11\n");
        assertEquals(0, cli.run("eval", "model_name_or_path=" + a, "dataset=" + text, "--json"), cli.err());
        assertEquals(0, cli.run("inspect", "model_name_or_path=" + a), cli.err());
        assertTrue(cli.out().contains("stored: linear layers in AQLM 2x4 g8 (quantization_config)"), cli.out());

        Path b = dir.resolve("b");
        assertEquals(0, cli.run(quantize(model, data, b)), cli.err());
        assertArrayEquals(Files.readAllBytes(a.resolve("model.safetensors")),
                Files.readAllBytes(b.resolve("model.safetensors")));
    }

    @Test
    void aMissingDatasetIsOneLineAndWritesNothing() throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        Path target = dir.resolve("out");
        assertEquals(1, cli.run(quantize(model, dir.resolve("none.txt"), target)));
        assertEquals("qlora4j quantize: dataset: " + dir.resolve("none.txt") + ": no such file", cli.err().strip());
        assertFalse(Files.exists(target));
    }
}
