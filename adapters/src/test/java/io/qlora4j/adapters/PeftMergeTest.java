package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.checkpoint.TinyModels;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/** An adapter laid out as Python PEFT writes it merges exactly as qlora4j's own adapter with the same numbers. */
class PeftMergeTest {
    @TempDir
    Path dir;

    @ParameterizedTest(name = "keys {0}")
    @ValueSource(strings = {"lora_A.weight", "lora_A.default.weight"})
    void pythonPeftAdapterWithFloat16WeightsMergesToTheSameTensorsAsOurs(String keyStyle) throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        Path ours = ExportFixtures.adapter(base, dir.resolve("ours"), null, 21);
        Path peft = Files.createDirectories(dir.resolve("peft"));
        // A recent PEFT's adapter_config.json for the same adapter: sorted keys, indent 2, fields qlora4j does not know.
        Files.writeString(peft.resolve("adapter_config.json"), """
                {
                  "alpha_pattern": {},
                  "auto_mapping": null,
                  "base_model_name_or_path": "tiny",
                  "bias": "none",
                  "corda_config": null,
                  "eva_config": null,
                  "exclude_modules": null,
                  "fan_in_fan_out": false,
                  "inference_mode": true,
                  "init_lora_weights": true,
                  "layer_replication": null,
                  "layers_pattern": null,
                  "layers_to_transform": null,
                  "loftq_config": {},
                  "lora_alpha": 8,
                  "lora_bias": false,
                  "lora_dropout": 0.0,
                  "megatron_config": null,
                  "megatron_core": "megatron.core",
                  "modules_to_save": null,
                  "peft_type": "LORA",
                  "qalora_group_size": 16,
                  "r": 4,
                  "rank_pattern": {},
                  "revision": null,
                  "target_modules": [
                    "down_proj",
                    "gate_proj",
                    "k_proj",
                    "o_proj",
                    "q_proj",
                    "up_proj",
                    "v_proj"
                  ],
                  "target_parameters": null,
                  "task_type": "CAUSAL_LM",
                  "trainable_token_indices": null,
                  "use_dora": false,
                  "use_qalora": false,
                  "use_rslora": false
                }""");
        try (SafetensorsReader in = SafetensorsReader.open(ours.resolve("adapter_model.safetensors"));
                SafetensorsWriter w = SafetensorsWriter.builder(peft).optBaseName("adapter_model").build()) {
            List<TensorInfo> tensors = new ArrayList<>(in.tensors());
            tensors.sort((x, y) -> x.name().compareTo(y.name()));
            for (TensorInfo t : tensors) {
                String key = t.name().replace("lora_A.weight", keyStyle)
                        .replace("lora_B.weight", keyStyle.replace("lora_A", "lora_B"));
                w.addFloats(key, DType.F16, t.shape(), in.floats(t.name()));
            }
        }
        Path fromOurs = dir.resolve("from-ours");
        Path fromPeft = dir.resolve("from-peft");
        MergedExport.builder(base, List.of(ours)).optDtype(DType.F32).build().writeTo(fromOurs);
        MergedExport.builder(base, List.of(peft)).optDtype(DType.F32).build().writeTo(fromPeft);
        try (SafetensorsReader a = SafetensorsReader.open(fromOurs); SafetensorsReader b = SafetensorsReader.open(fromPeft);
                SafetensorsReader original = SafetensorsReader.open(base)) {
            assertEquals(a.tensors().size(), b.tensors().size());
            for (TensorInfo t : a.tensors()) {
                assertEquals(a.bytes(t.name()), b.bytes(t.name()), t.name());
            }
            String q = "model.layers.0.self_attn.q_proj.weight";
            assertFalse(Arrays.equals(original.floats(q), b.floats(q)), "the adapter changed the weight");
        }
    }

    @Test
    void rankAndAlphaPatternsWithRsloraMergeWithEachModulesOwnScaling() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        Path adapter = Files.createDirectories(dir.resolve("patterns"));
        Files.writeString(adapter.resolve("adapter_config.json"), """
                {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_rslora": true, "target_modules": ["q_proj", "v_proj"],
                 "rank_pattern": {"q_proj": 2}, "alpha_pattern": {"v_proj": 3}}""");
        Random random = new Random(22);
        try (SafetensorsWriter w = SafetensorsWriter.builder(adapter).optBaseName("adapter_model").build()) {
            for (String module : List.of("self_attn.q_proj", "self_attn.v_proj")) {
                int rank = module.endsWith("q_proj") ? 2 : 4;
                String key = "base_model.model.model.layers.0." + module;
                w.addFloats(key + ".lora_A.weight", DType.F32, new long[] {rank, TinyModels.HIDDEN},
                        Fixtures.scaled(Fixtures.gaussian(random, rank * TinyModels.HIDDEN), 0.1f));
                w.addFloats(key + ".lora_B.weight", DType.F32, new long[] {TinyModels.HIDDEN, rank},
                        Fixtures.scaled(Fixtures.gaussian(random, rank * TinyModels.HIDDEN), 0.1f));
            }
        }
        Path merged = dir.resolve("merged");
        MergedExport.builder(base, List.of(adapter)).optDtype(DType.F32).build().writeTo(merged);
        float[] expected = ExportFixtures.logits(base, null, adapter);
        assertTrue(ExportFixtures.maxDifference(expected, ExportFixtures.logits(merged)) <= 1e-5);
        assertTrue(ExportFixtures.maxDifference(expected, ExportFixtures.logits(base)) > 1e-3, "the adapter matters");
    }
}
