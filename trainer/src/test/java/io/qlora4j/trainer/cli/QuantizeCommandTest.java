package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.checkpoint.TinyModels;
import java.io.RandomAccessFile;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class QuantizeCommandTest {
    @TempDir
    Path dir;

    private final CliRun cli = new CliRun();


    @Test
    void quantizePrintsSizesAndBitsPerParameter() throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        Path target = dir.resolve("nf4");
        int rc = cli.run("quantize", "model_name_or_path=" + model, "export_dir=" + target, "quantization_bit=4");
        assertEquals(0, rc, cli.err());
        assertTrue(cli.out().contains("quantized 7 of 12 tensors"), cli.out());
        assertTrue(cli.out().contains("to bitsandbytes NF4+DQ, blocksize 64:"), cli.out());
        // 4 + 8/64 bits, plus one float32 nested absmax per tensor (7 tensors, 34,816 parameters):
        // 4.125 + 7 * 32 / 34816 = 4.1314 (large tensors approach 4.127).
        assertTrue(cli.out().contains("34,816 parameters"), cli.out());
        assertTrue(cli.out().contains("4.131 bits per quantized parameter"), cli.out());
        assertTrue(Files.exists(target.resolve("model.safetensors")));
    }

    @Test
    void yamlFileWithOverridesAfterIt() throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        Path yaml = dir.resolve("q.yaml");
        Files.writeString(yaml, "model_name_or_path: " + model + "\nquantization_bit: 4\ndouble_quantization: true\n");
        int rc = cli.run("quantize", yaml.toString(), "export_dir=" + dir.resolve("fp4"), "quantization_type=fp4",
                "double_quantization=false");
        assertEquals(0, rc, cli.err());
        assertTrue(cli.out().contains("to bitsandbytes FP4, blocksize 64:"), cli.out());
        assertTrue(cli.out().contains("4.500 bits"), cli.out());
    }

    @Test
    void truncatedCheckpointIsOneLineAndNoOutput() throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        try (RandomAccessFile f = new RandomAccessFile(model.resolve("model.safetensors").toFile(), "rw")) {
            f.setLength(f.length() / 2);
        }
        Path target = dir.resolve("nf4");
        int rc = cli.run("quantize", "model_name_or_path=" + model, "export_dir=" + target, "quantization_bit=4");
        assertEquals(1, rc);
        assertEquals("", cli.out());
        String message = cli.err();
        assertEquals(1, message.lines().count(), message);
        assertTrue(message.startsWith("qlora4j quantize: ") && message.contains("model.safetensors"), message);
        assertFalse(Files.exists(target));
        try (Stream<Path> left = Files.list(dir)) {
            assertEquals(1, left.count(), "no partial output directory");
        }
    }

    @Test
    void aBitWidthTheMethodLacksAndAMethodNotImplementedAreOneLineRefusalsNamingThem() throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        Path target = dir.resolve("out");
        assertEquals(1, cli.run("quantize", "model_name_or_path=" + model, "export_dir=" + target, "quantization_bit=3"));
        assertEquals("qlora4j quantize: quantization_bit 3 is not supported by quantization_method bnb (allowed: 4, 8)",
                cli.err().strip());
        assertEquals(1, cli.run("quantize", "model_name_or_path=" + model, "export_dir=" + target, "quantization_bit=8",
                "quantization_method=bitsandbytes", "llm_int8_threshold=-1"));
        assertEquals("qlora4j quantize: llm_int8_threshold must be a number >= 0, got -1.0",
                cli.err().strip());
        assertFalse(Files.exists(target));
    }

    @Test
    void unknownKeyIsOneLineWithASuggestion() {
        int rc = cli.run("quantize", "model_name_or_pth=x");
        assertEquals(1, rc);
        assertEquals("qlora4j quantize: command line: unknown key 'model_name_or_pth' (did you mean 'model_name_or_path'?)",
                cli.err().strip());
    }

    @Test
    void debugShowsTheStackTrace() {
        int rc = cli.run("quantize", "--debug", "model_name_or_path=" + dir.resolve("missing"), "export_dir=" + dir.resolve("o"),
                "quantization_bit=4");
        assertEquals(1, rc);
        assertTrue(cli.err().lines().count() > 1, cli.err());
        assertTrue(cli.err().contains("at io.qlora4j"), cli.err());
    }
}
