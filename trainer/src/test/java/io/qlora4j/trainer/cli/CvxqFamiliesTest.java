package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.family.FamilyCheckpoint;
import io.qlora4j.model.family.ReferenceDecoder.Spec;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.trainer.TinyModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * {@code quantize quantization_method=cvxq} on every family (2 layers, hidden 32; Phi-3 with its fused qkv_proj and
 * gate_up_proj): the packed model keeps a corrected bias on every projection and {@code eval} reads them; where the
 * family's config.json can declare all of them (Llama) the dense export evaluates as the packed model within 1e-5;
 * elsewhere the dense export is refused in one line naming the bias, and a model quantized with
 * {@code cvxq_bias_correction=declarable} exports to a dense checkpoint that evaluates as it within 1e-5.
 */
class CvxqFamiliesTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    private final CliRun cli = new CliRun();

    @ParameterizedTest
    @MethodSource("io.qlora4j.trainer.cli.FamilyCommandsTest#families")
    void everyFamilyQuantizesAndItsDenseExportKeepsEveryBiasOrIsRefusedByName(Spec spec) throws Exception {
        Path base = FamilyCommandsTest.writeBase(new FamilyCheckpoint(spec, 41), dir.resolve("base"));
        Path calibration = texts();
        Path text = Files.writeString(dir.resolve("eval.txt"), "copy a b c d e f g h\n");

        Path all = quantize(base, calibration, "all");
        try (SafetensorsReader reader = SafetensorsReader.open(all)) {
            String down = "model.layers.1.mlp.down_proj.bias";
            assertTrue(reader.contains(down), "every projection carries its corrected bias");
        }
        double packed = evalLoss(all, text);
        assertTrue(Math.abs(packed - evalLoss(base, text)) > 1e-7, "the quantized model is not the base");
        boolean declarable = spec.modelType().equals("llama");
        Path dense = dir.resolve("dense-all");
        int rc = cli.run("export", "model_name_or_path=" + all, "export_dir=" + dense, "export_dtype=float32");
        if (declarable) {
            assertEquals(0, rc, cli.err());
            assertEquals(packed, evalLoss(dense, text), 1e-5);
        } else {
            assertEquals(1, rc);
            assertEquals(1, cli.err().strip().lines().count(), cli.err());
            assertTrue(cli.err().contains("cvxq_bias_correction=declarable") && cli.err().contains(".bias"),
                    cli.err());
            assertFalse(Files.exists(dense));

            Path declared = quantize(base, calibration, "declarable");
            double packedDeclared = evalLoss(declared, text);
            Path denseDeclared = dir.resolve("dense-declarable");
            assertEquals(0, cli.run("export", "model_name_or_path=" + declared, "export_dir=" + denseDeclared,
                    "export_dtype=float32"), cli.err());
            assertEquals(packedDeclared, evalLoss(denseDeclared, text), 1e-5);
        }
    }

    private Path quantize(Path base, Path calibration, String correction) throws Exception {
        Path out = dir.resolve("cvxq-" + correction);
        assertEquals(0, cli.run("quantize", "model_name_or_path=" + base, "export_dir=" + out,
                "quantization_method=cvxq", "target_bits=4", "dataset=" + calibration, "cutoff_len=16",
                "max_samples=4", "cvxq_group_size=16", "cvxq_iterations=4", "cvxq_bias_correction=" + correction),
                cli.err());
        JsonNode config = JSON.readTree(out.resolve("config.json").toFile());
        assertEquals("cvxq", config.path("quantization_config").path("quant_method").asText());
        return out;
    }

    private Path texts() throws Exception {
        Random random = new Random(7);
        List<String> vocab = TinyModel.VOCAB.subList(TinyModel.VOCAB.indexOf("copy"), TinyModel.VOCAB.size());
        List<String> lines = new ArrayList<>();
        for (int i = 0; i < 4; i++) {
            StringBuilder line = new StringBuilder();
            for (int w = 0; w < 24; w++) {
                line.append(w == 0 ? "" : " ").append(vocab.get(random.nextInt(vocab.size())));
            }
            lines.add(line.toString());
        }
        return Files.write(dir.resolve("calibration.txt"), lines);
    }

    private double evalLoss(Path model, Path text) throws Exception {
        assertEquals(0, cli.run("eval", "model_name_or_path=" + model, "dataset=" + text, "--json"), cli.err());
        List<String> lines = cli.out().lines().toList();
        return JSON.readTree(lines.get(lines.size() - 1)).path("loss").asDouble();
    }
}
