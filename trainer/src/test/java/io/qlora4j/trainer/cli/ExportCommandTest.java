package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.trainer.TinyModel;
import io.qlora4j.trainer.TinyTasks;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ExportCommandTest {
    private static final Pattern DIFFERENCE = Pattern.compile("max \\|logit difference\\| (\\S+) \\(largest \\|logit\\| (\\S+)\\)");

    @TempDir
    Path dir;

    private final CliRun cli = new CliRun();


    @Test
    void qloraAdapterFromTrainExportsOntoItsDequantizedBaseOrOnRequestTheOriginalAndBothVerify() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 3);
        Path data = TinyTasks.write(dir.resolve("copy.json"), "copy", 4, 2);
        Path adapter = dir.resolve("adapter");
        assertEquals(0, cli.run("train", "model_name_or_path=" + base, "dataset=" + data, "output_dir=" + adapter,
                "quantization_bit=4", "lora_rank=4", "learning_rate=0.05", "max_steps=3"), cli.err());

        Path merged = dir.resolve("merged");
        assertEquals(0, cli.run("export", "model_name_or_path=" + base, "adapter_name_or_path=" + adapter,
                "export_dir=" + merged, "export_dtype=float32", "verify=true", "prompt=copy a b c"), cli.err());
        assertTrue(cli.out().contains("merge_base dequantized (bitsandbytes NF4+DQ, blocksize 64)"), cli.out());
        assertTrue(cli.out().contains("merged 14 modules"), cli.out());
        assertTrue(difference() <= 1e-5, cli.out());

        assertEquals(0, cli.run("export", "model_name_or_path=" + base, "adapter_name_or_path=" + adapter,
                "export_dir=" + dir.resolve("original"), "export_dtype=float32", "merge_base=original", "verify=true"),
                cli.err());
        assertTrue(cli.out().contains("merge_base original\n"), cli.out());
        assertTrue(difference() <= 1e-5, "checked against the dense base + adapter: " + cli.out());
        assertTrue(Files.readString(merged.resolve("README.md")).contains("- Merge base: dequantized"));
    }

    @Test
    void legacyFormatSeveralAdaptersToVerifyAndAnOccupiedExportDirAreOneLineRefusals() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 4);
        assertEquals(1, cli.run("export", "model_name_or_path=" + base, "adapter_name_or_path=a", "export_dir=x",
                "export_legacy_format=true"));
        assertEquals("qlora4j export: command line: export_legacy_format: not implemented yet (qlora4j writes"
                + " safetensors only; .bin files are Python pickles)", cli.err().strip());

        // LLaMA-Factory's export_quantization_bit alone is a calibrated GPTQ export
        assertEquals(1, cli.run("export", "model_name_or_path=" + base, "adapter_name_or_path=a",
                "export_dir=" + dir.resolve("x"), "export_quantization_bit=4"));
        assertTrue(cli.err().strip().startsWith("qlora4j export: export_quantization_bit: LLaMA-Factory exports a GPTQ"
                + " model calibrated on export_quantization_dataset, which qlora4j does not write; add"
                + " export_quantization_method ("), cli.err());
        assertFalse(Files.exists(dir.resolve("x")));

        assertEquals(1, cli.run("export", "model_name_or_path=" + base, "adapter_name_or_path=a,b", "export_dir=x",
                "verify=true"));
        assertEquals("qlora4j export: verify: compares base + one adapter with the export, but 2 adapters are merged;"
                + " verify them one at a time", cli.err().strip());

        Path data = TinyTasks.write(dir.resolve("copy.json"), "copy", 4, 2);
        Path adapter = dir.resolve("adapter");
        assertEquals(0, cli.run("train", "model_name_or_path=" + base, "dataset=" + data, "output_dir=" + adapter,
                "lora_rank=2", "max_steps=1"), cli.err());
        Path occupied = Files.createDirectories(dir.resolve("occupied"));
        Files.writeString(occupied.resolve("keep.txt"), "x");
        assertEquals(1, cli.run("export", "model_name_or_path=" + base, "adapter_name_or_path=" + adapter,
                "export_dir=" + occupied));
        assertEquals("qlora4j export: " + occupied + ": exists and is not empty; choose another export_dir or remove it",
                cli.err().strip());
        assertFalse(cli.out().contains("wrote"), cli.out());
    }

    /** The maximum logit difference the last run's verify line printed. */
    private double difference() {
        Matcher m = DIFFERENCE.matcher(cli.out());
        assertTrue(m.find(), cli.out());
        assertTrue(Double.parseDouble(m.group(2)) > 0.01, "logits of a meaningful size: " + cli.out());
        return Double.parseDouble(m.group(1));
    }
}
