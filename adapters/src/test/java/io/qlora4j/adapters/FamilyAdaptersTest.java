package io.qlora4j.adapters;

import static io.qlora4j.adapters.ExportFixtures.logits;
import static io.qlora4j.adapters.ExportFixtures.maxAbs;
import static io.qlora4j.adapters.ExportFixtures.maxDifference;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.family.FamilyCheckpoint;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.family.ReferenceDecoder.Spec;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LoRA on every family: {@code all} targets each family's own projections (Phi-3's fused qkv_proj and gate_up_proj),
 * the PEFT file holds exactly PEFT's keys and shapes for them, it loads back, and the merged export computes what
 * base + adapter computed within 1e-5 relative to the logits.
 */
class FamilyAdaptersTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    /** The projections PEFT's all-linear finds in a block of each family, as transformers names them. */
    private static List<String> projections(Spec spec) {
        return spec.fused() ? List.of("self_attn.qkv_proj", "self_attn.o_proj", "mlp.gate_up_proj", "mlp.down_proj")
                : List.of("self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.o_proj",
                        "mlp.gate_proj", "mlp.up_proj", "mlp.down_proj");
    }

    /** {@code [out, in]} of a projection, from the spec's sizes. */
    private static long[] outIn(Spec spec, String name) {
        long h = spec.hidden();
        long q = (long) spec.heads() * spec.headDim();
        long kv = (long) spec.kvHeads() * spec.headDim();
        return switch (name.substring(name.indexOf('.') + 1)) {
            case "q_proj" -> new long[] {q, h};
            case "k_proj", "v_proj" -> new long[] {kv, h};
            case "qkv_proj" -> new long[] {q + 2 * kv, h};
            case "o_proj" -> new long[] {h, q};
            case "gate_proj", "up_proj" -> new long[] {spec.inter(), h};
            case "gate_up_proj" -> new long[] {2L * spec.inter(), h};
            default -> new long[] {h, spec.inter()};
        };
    }

    @Test
    void loraOnEveryFamilyWritesPeftKeysOfItsProjectionsAndMergesExactly() throws Exception {
        for (Spec spec : FamilyCheckpoint.oneOfEachFamily(2, 50)) {
            String family = spec.modelType();
            FamilyCheckpoint checkpoint = new FamilyCheckpoint(spec, 21);
            Path base = checkpoint.write(dir.resolve(family), DType.F32,
                    checkpoint.config(false, FamilyCheckpoint.familyKeys(spec)));
            Path adapter = ExportFixtures.adapter(base, dir.resolve(family + "-adapter"), BaseFormats.QLORA, 4);

            Map<String, long[]> expected = new LinkedHashMap<>();
            for (int layer = 0; layer < spec.layers(); layer++) {
                for (String name : projections(spec)) {
                    String key = "base_model.model.model.layers." + layer + "." + name;
                    long[] outIn = outIn(spec, name);
                    expected.put(key + ".lora_A.weight", new long[] {4, outIn[1]});
                    expected.put(key + ".lora_B.weight", new long[] {outIn[0], 4});
                }
            }
            try (SafetensorsReader reader = SafetensorsReader.open(adapter.resolve("adapter_model.safetensors"))) {
                assertEquals(expected.keySet(), reader.tensors().stream().map(TensorInfo::name)
                        .collect(Collectors.toSet()), family);
                for (Map.Entry<String, long[]> e : expected.entrySet()) {
                    assertArrayEquals(e.getValue(), reader.info(e.getKey()).shape(), family + " " + e.getKey());
                }
            }
            JsonNode config = JSON.readTree(adapter.resolve("adapter_config.json").toFile());
            assertEquals(projections(spec).stream().map(n -> n.substring(n.indexOf('.') + 1)).sorted().toList(),
                    JSON.convertValue(config.get("target_modules"), List.class), family);

            Path merged = dir.resolve(family + "-merged");
            MergedExport.builder(base, List.of(adapter)).optDtype(DType.F32).build().writeTo(merged);
            float[] withAdapter = logits(base, BaseFormats.QLORA, adapter);
            assertTrue(maxAbs(withAdapter) > 0.01, family);
            // float32 rounding of x(W + sBA) against xW + s(xB)A: within 1e-5 of the logits' scale
            double difference = maxDifference(withAdapter, logits(merged));
            assertTrue(difference <= 1e-5 * maxAbs(withAdapter), family + ": merged vs base + adapter " + difference
                    + " at logits up to " + maxAbs(withAdapter));
        }
    }

    /**
     * PEFT 0.21 saves an all-linear target list of Phi-3 as full module paths; such an adapter loads, and a target
     * the family lacks (q_proj on Phi-3) is refused naming the family's own projections.
     */
    @Test
    void phi3AdapterWithFullModulePathsLoadsAndSplitNamesAreRefused() throws Exception {
        Spec spec = FamilyCheckpoint.oneOfEachFamily(2, 50).stream().filter(Spec::fused).findFirst().orElseThrow();
        FamilyCheckpoint checkpoint = new FamilyCheckpoint(spec, 22);
        Path base = checkpoint.write(dir.resolve("phi3"), DType.F32, checkpoint.config(true, Map.of()));
        Path adapter = ExportFixtures.adapter(base, dir.resolve("adapter"), null, 6);
        float[] shortNames = logits(base, null, adapter);
        ObjectNode config = (ObjectNode) JSON.readTree(adapter.resolve("adapter_config.json").toFile());
        ArrayNode paths = config.putArray("target_modules");
        for (int layer = 0; layer < 2; layer++) {
            for (String name : projections(spec)) {
                paths.add("model.layers." + layer + "." + name);
            }
        }
        Files.writeString(adapter.resolve("adapter_config.json"), config.toPrettyString());
        assertArrayEquals(shortNames, logits(base, null, adapter));

        try (NDManager m = NDManager.newBaseManager(); CausalLM model = ModelLoader.builder().build().load(base, m)) {
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class, () -> LoraAdapters.attach(model,
                    new LoraSettings(4, 8, 0, false, List.of("q_proj")), m, 1));
            assertEquals("lora_target 'q_proj' is not a linear layer of a phi3 block (valid: all, qkv_proj, o_proj,"
                    + " gate_up_proj, down_proj)", e.getMessage());
        }
    }
}
