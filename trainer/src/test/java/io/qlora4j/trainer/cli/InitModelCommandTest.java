package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.llama.LlamaFamily;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.TensorInfo;
import java.io.PrintWriter;
import java.io.StringWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class InitModelCommandTest {
    @TempDir
    Path dir;

    private Path init(String out, String... options) throws Exception {
        StringWriter err = new StringWriter();
        assertEquals(0, run(err, out, options), err.toString());
        return dir.resolve(out);
    }

    /** Runs init-model from a small Llama config into {@code out} and returns its exit status; stderr goes to err. */
    private int run(StringWriter err, String out, String... options) throws Exception {
        Path source = dir.resolve("source");
        Files.createDirectories(source);
        LlamaFamily.builder(32, 64, 2, 4, 40).build().write(source.resolve("config.json"));
        Files.writeString(source.resolve("tokenizer.json"), "{}");
        String[] args = new String[3 + options.length];
        args[0] = "init-model";
        args[1] = source.toString();
        args[2] = dir.resolve(out).toString();
        System.arraycopy(options, 0, args, 3, options.length);
        return Main.run(new PrintWriter(new StringWriter()), new PrintWriter(err, true), args);
    }

    /** A standard deviation that is negative or not a finite number is one line, and nothing is written. */
    @Test
    void aStdThatIsNoStandardDeviationIsRefused() throws Exception {
        for (String std : new String[] {"-1", "NaN", "Infinity"}) {
            StringWriter err = new StringWriter();
            assertEquals(1, run(err, "bad", "--std", std), std);
            assertEquals("qlora4j init-model: --std: " + Double.parseDouble(std) + " is out of range (allowed: a"
                    + " finite number >= 0)", err.toString().strip());
            assertFalse(Files.exists(dir.resolve("bad")), std);
        }
    }

    /**
     * An OUT_DIR that holds anything (an earlier model among it) is refused in one line and left as it was, as
     * export_dir is; an empty one is written.
     */
    @Test
    void anOccupiedOutDirIsRefusedAndLeftAsItWas() throws Exception {
        Path earlier = init("earlier", "--seed", "1");
        byte[] weights = Files.readAllBytes(earlier.resolve("model.safetensors"));
        StringWriter err = new StringWriter();
        assertEquals(1, run(err, "earlier", "--seed", "2"));
        assertEquals("qlora4j init-model: " + earlier + ": exists and is not empty; choose another OUT_DIR or remove it",
                err.toString().strip());
        assertArrayEquals(weights, Files.readAllBytes(earlier.resolve("model.safetensors")));
        Files.createDirectories(dir.resolve("empty"));
        assertTrue(Files.isRegularFile(init("empty").resolve("model.safetensors")));
    }

    @Test
    void writesEveryLlamaTensorWithNormsAtOneAndWeightsOfTheAskedSpread() throws Exception {
        Path model = init("a", "--seed", "3", "--std", "0.05");
        assertTrue(Files.isRegularFile(model.resolve("tokenizer.json")));
        assertTrue(Files.isRegularFile(model.resolve("config.json")));
        try (SafetensorsReader reader = SafetensorsReader.open(model.resolve("model.safetensors"))) {
            // embeddings, lm_head, final norm, and per layer 2 norms + 7 projections
            assertEquals(3 + 2 * 9, reader.tensors().size());
            for (float v : reader.floats("model.layers.1.post_attention_layernorm.weight")) {
                assertEquals(1f, v);
            }
            float[] gate = reader.floats("model.layers.0.mlp.gate_proj.weight");
            assertArrayEquals(new long[] {64, 32}, info(reader, "model.layers.0.mlp.gate_proj.weight").shape());
            double sumSquares = 0;
            for (float v : gate) {
                sumSquares += (double) v * v;
            }
            // 2,048 draws: the sample deviation is within 5% of 0.05 far beyond 3 sigma (sigma ~ 1.6%)
            assertEquals(0.05, Math.sqrt(sumSquares / gate.length), 0.0025);
        }
    }

    private static TensorInfo info(SafetensorsReader reader, String name) {
        return reader.tensors().stream().filter(t -> t.name().equals(name)).findFirst().orElseThrow();
    }

    @Test
    void theSameSeedWritesTheSameBytes() throws Exception {
        byte[] first = Files.readAllBytes(init("a", "--seed", "9").resolve("model.safetensors"));
        assertArrayEquals(first, Files.readAllBytes(init("b", "--seed", "9").resolve("model.safetensors")));
    }
}
