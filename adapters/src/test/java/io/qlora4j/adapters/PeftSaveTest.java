package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.Bnb4bitFormat;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.QuantType;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Saving in PEFT's layout (FORMATS.md section 7) and loading our own files back. */
class PeftSaveTest {
    /** What Python's {@code json.dumps(config, indent=2, sort_keys=True)} writes for these settings, no final newline. */
    private static final String EXPECTED_CONFIG = """
            {
              "alpha_pattern": {},
              "base_model_name_or_path": "meta-llama/Llama-2-7b-hf",
              "bias": "none",
              "fan_in_fan_out": false,
              "inference_mode": true,
              "init_lora_weights": true,
              "layers_to_transform": null,
              "lora_alpha": 16,
              "lora_dropout": 0.05,
              "modules_to_save": null,
              "peft_type": "LORA",
              "r": 8,
              "rank_pattern": {},
              "target_modules": [
                "down_proj",
                "gate_proj",
                "k_proj",
                "o_proj",
                "q_proj",
                "up_proj",
                "v_proj"
              ],
              "task_type": "CAUSAL_LM",
              "use_dora": false,
              "use_rslora": false
            }""";

    @TempDir
    Path dir;

    @Test
    void configHoldsPeftFieldsOnlyWithSortedKeysIndentTwoAndTheBaseFormatGoesToTheSideFileAndCard()
            throws Exception {
        TinyModel tiny = new TinyModel(20);
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters adapters = LoraAdapters.attach(model, new LoraSettings(8, 16, 0.05, false, List.of("all")), m, 1)) {
            adapters.save(dir, "meta-llama/Llama-2-7b-hf", new Bnb4bitFormat(QuantType.FP4, 128, false));
        }
        assertEquals(EXPECTED_CONFIG, Files.readString(dir.resolve("adapter_config.json")));
        assertEquals("""
                {
                  "base_format": {
                    "double_quantization": false,
                    "quantization_bit": 4,
                    "quantization_blocksize": 128,
                    "quantization_method": "bnb",
                    "quantization_type": "fp4"
                  },
                  "base_format_description": "bitsandbytes FP4, blocksize 128"
                }""", Files.readString(dir.resolve("qlora4j.json")));
        assertEquals(new Bnb4bitFormat(QuantType.FP4, 128, false), BaseFormatRecord.read(dir), "read back");
        String card = Files.readString(dir.resolve("README.md"));
        assertTrue(card.startsWith("---\nbase_model: meta-llama/Llama-2-7b-hf\nlibrary_name: peft\n"), card);
        // named by what it is: a run writes it in a hidden staging directory and renames that
        assertTrue(card.contains("\n# LoRA adapter for meta-llama/Llama-2-7b-hf\n"), card);
        assertTrue(card.contains("- Base format during training: bitsandbytes FP4, blocksize 128 (quantization_method: bnb,"
                + " quantization_bit: 4, quantization_type: fp4, double_quantization: false, quantization_blocksize: 128)"),
                card);
    }

    @Test
    void weightsAreF32UnderPeftKeysWithPtMetadataAndNoTempFilesRemain() throws Exception {
        TinyModel tiny = new TinyModel(21);
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters adapters = LoraAdapters.attach(model, new LoraSettings(2, 4, 0, false, List.of("q_proj", "down_proj")), m, 2)) {
            Fixtures.randomizeB(adapters, 3);
            adapters.save(dir, "tiny", BaseFormats.DENSE);
            adapters.save(dir, "tiny", BaseFormats.DENSE); // saving again replaces both files
            try (SafetensorsReader reader = SafetensorsReader.open(dir.resolve("adapter_model.safetensors"))) {
                assertEquals(Map.of("format", "pt"), reader.metadata());
                List<String> names = new ArrayList<>();
                for (TensorInfo t : reader.tensors()) {
                    names.add(t.name());
                    assertEquals(DType.F32, t.dtype(), t.name());
                }
                List<String> expected = new ArrayList<>();
                for (int layer = 0; layer < 2; layer++) {
                    for (String module : List.of("self_attn.q_proj", "mlp.down_proj")) {
                        expected.add("base_model.model.model.layers." + layer + "." + module + ".lora_A.weight");
                        expected.add("base_model.model.model.layers." + layer + "." + module + ".lora_B.weight");
                    }
                }
                assertEquals(expected.stream().sorted().toList(), names.stream().sorted().toList());
                assertArrayEquals(new long[] {2, 16}, reader.info("base_model.model.model.layers.1.self_attn.q_proj.lora_A.weight").shape());
                assertArrayEquals(new long[] {16, 2}, reader.info("base_model.model.model.layers.1.self_attn.q_proj.lora_B.weight").shape());
                assertArrayEquals(new long[] {2, 24}, reader.info("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight").shape());
                assertArrayEquals(new long[] {16, 2}, reader.info("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight").shape());
                for (Map.Entry<String, NDArray> p : adapters.parameters().entrySet()) {
                    assertArrayEquals(p.getValue().toFloatArray(), reader.floats(p.getKey()), 0f, p.getKey());
                }
            }
        }
        try (Stream<Path> files = Files.list(dir)) {
            assertEquals(List.of("README.md", "adapter_config.json", "adapter_model.safetensors", "qlora4j.json"),
                    files.map(f -> f.getFileName().toString()).sorted().toList());
        }
    }

    @Test
    void savedAdapterLoadsOntoAFreshModelWithIdenticalOutputsAndDropoutMasks() throws Exception {
        TinyModel tiny = new TinyModel(22);
        LoraSettings settings = new LoraSettings(4, 12, 0.1, true, List.of("q_proj", "v_proj", "down_proj"));
        float[] eval;
        float[] train;
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters adapters = LoraAdapters.attach(model, settings, m, 4)) {
            Fixtures.randomizeB(adapters, 5);
            eval = Fixtures.logits(m, model);
            adapters.setTraining(true);
            adapters.setDropoutSeed(99);
            train = Fixtures.logits(m, model);
            adapters.save(dir, "tiny", BaseFormats.DENSE);
        }
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters loaded = LoraAdapters.load(dir, model, m)) {
            assertEquals(settings, loaded.settings());
            assertArrayEquals(eval, Fixtures.logits(m, model), 0f);
            loaded.setTraining(true);
            loaded.setDropoutSeed(99);
            assertArrayEquals(train, Fixtures.logits(m, model), 0f, "a resumed run reproduces the dropout masks");
            loaded.parameters().values().forEach(p -> assertTrue(p.hasGradient(), "loaded matrices stay trainable"));
        }
    }

    @Test
    void aSideFileNamingABitWidthTheMethodLacksIsOneLineNamingIt() throws Exception {
        Files.writeString(dir.resolve("qlora4j.json"), "{\"base_format\": {\"quantization_method\": \"bnb\","
                + " \"quantization_bit\": 3}}");
        ModelException e = assertThrows(ModelException.class, () -> BaseFormatRecord.read(dir));
        assertEquals(dir.resolve("qlora4j.json") + ": base_format: quantization_bit 3 is not supported by"
                + " quantization_method bnb (allowed: 4, 8)", e.getMessage());
    }

    /** A side file that is no object, or has no base_format, is refused naming the file and what it lacks. */
    @Test
    void aSideFileWithoutAnObjectOrABaseFormatSaysSo() throws Exception {
        Path file = dir.resolve("qlora4j.json");
        for (String text : new String[] {"[]", "\"nf4\"", ""}) {
            Files.writeString(file, text);
            assertEquals(file + ": expected a JSON object",
                    assertThrows(ModelException.class, () -> BaseFormatRecord.read(dir)).getMessage(), text);
        }
        Files.writeString(file, "{\"init_seed\": 7}");
        assertEquals(file + ": base_format must be an object of quantization keys, got nothing",
                assertThrows(ModelException.class, () -> BaseFormatRecord.read(dir)).getMessage());
    }

    @Test
    void loadingIntoADirectoryWithoutConfigSaysSo() {
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = new TinyModel(24).build(m)) {
            ModelException e = assertThrows(ModelException.class, () -> LoraAdapters.load(dir, model, m));
            assertTrue(e.getMessage().contains("no adapter_config.json"), e.getMessage());
        }
    }
}
