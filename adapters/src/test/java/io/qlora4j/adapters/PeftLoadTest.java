package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.quant.HalfFloats;
import java.nio.FloatBuffer;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.function.Consumer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/** Loading adapters laid out as Python PEFT writes them, and refusing what qlora4j cannot reproduce. */
class PeftLoadTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0} weights, keys {1}")
    @CsvSource({"F16, saved", "BF16, saved", "F16, in-memory", "BF16, in-memory"})
    void pythonPeftAdapterWithHalfWeightsAndForeignConfigKeysGivesTheOutputsOfOurF32Adapter(DType dtype, String keys)
            throws Exception {
        TinyModel tiny = new TinyModel(30);
        Map<String, float[]> values = new LinkedHashMap<>();
        Map<String, long[]> shapes = new HashMap<>();
        float[] expected;
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters ours = LoraAdapters.attach(model,
                        new LoraSettings(4, 8, 0.05, false, List.of("q_proj", "k_proj", "v_proj", "o_proj")), m, 31)) {
            Fixtures.randomizeB(ours, 32);
            for (Map.Entry<String, NDArray> p : ours.parameters().entrySet()) {
                float[] v = representableInF16AndBf16(p.getValue().toFloatArray());
                p.getValue().set(FloatBuffer.wrap(v));
                values.put(p.getKey(), v);
                shapes.put(p.getKey(), p.getValue().getShape().getShape());
            }
            expected = Fixtures.logits(m, model);
        }
        // As PEFT lays it out: few config keys, some unknown to qlora4j, fan_in_fan_out set (PEFT resets it for
        // nn.Linear), tensors in another order, 16-bit, optionally with the in-memory ".default" adapter name.
        Files.writeString(dir.resolve("adapter_config.json"), """
                {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 4, "lora_alpha": 8, "lora_dropout": 0.05,
                 "target_modules": ["v_proj", "o_proj", "q_proj", "k_proj"], "fan_in_fan_out": true,
                 "megatron_core": "megatron.core", "future_option": {"nested": [1, 2.5, null]}, "revision": null}""");
        try (SafetensorsWriter w = SafetensorsWriter.builder(dir).optBaseName("adapter_model").build()) {
            List<String> names = new ArrayList<>(values.keySet());
            for (int i = names.size() - 1; i >= 0; i--) {
                String name = names.get(i);
                String stored = keys.equals("saved") ? name : name.replace(".weight", ".default.weight");
                w.addFloats(stored, dtype, shapes.get(name), values.get(name));
            }
        }
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters loaded = LoraAdapters.load(dir, model, m)) {
            assertArrayEquals(expected, Fixtures.logits(m, model), 0f);
            assertEquals(new LoraSettings(4, 8, 0.05, false, List.of("q_proj", "k_proj", "v_proj", "o_proj")),
                    loaded.settings());
        }
    }

    @Test
    void rankAndAlphaPatternsWithRsloraGiveEachModuleItsScalingAndSurviveASaveRoundTrip() throws Exception {
        TinyModel tiny = new TinyModel(33);
        Random random = new Random(34);
        Map<String, ReferenceForward.Lora> reference = new HashMap<>();
        try (SafetensorsWriter w = SafetensorsWriter.builder(dir).optBaseName("adapter_model").build()) {
            for (int layer = 0; layer < 2; layer++) {
                for (String module : List.of("self_attn.q_proj", "self_attn.v_proj")) {
                    String path = "model.layers." + layer + "." + module;
                    int rank = module.endsWith("q_proj") ? 2 : 4;
                    double alpha = path.equals("model.layers.1.self_attn.v_proj") ? 2 : 8;
                    long[] shape = tiny.linearShape(module);
                    float[] a = Fixtures.scaled(Fixtures.gaussian(random, (int) (rank * shape[1])), 0.2f);
                    float[] b = Fixtures.scaled(Fixtures.gaussian(random, (int) (shape[0] * rank)), 0.3f);
                    w.addFloats("base_model.model." + path + ".lora_A.weight", DType.F32, new long[] {rank, shape[1]}, a);
                    w.addFloats("base_model.model." + path + ".lora_B.weight", DType.F32, new long[] {shape[0], rank}, b);
                    reference.put(path, new ReferenceForward.Lora(Fixtures.toDoubles(a), Fixtures.toDoubles(b), rank,
                            alpha / Math.sqrt(rank)));
                }
            }
        }
        Files.writeString(dir.resolve("adapter_config.json"), """
                {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "use_rslora": true,
                 "target_modules": ".*\\\\.(q_proj|v_proj)",
                 "rank_pattern": {"q_proj": 2}, "alpha_pattern": {"model.layers.1.self_attn.v_proj": 2}}""");
        double[] expected = Fixtures.flatten(new ReferenceForward(tiny, reference).logits(TinyModel.ids(6)));
        Path copy = dir.resolve("saved");
        float[] logits;
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters loaded = LoraAdapters.load(dir, model, m)) {
            reference.forEach((path, lora) -> {
                LoraSettings s = loaded.modules().get(path).settings();
                assertEquals(lora.rank(), s.rank(), path);
                assertEquals(lora.scaling(), s.scaling(), 1e-15, path);
            });
            logits = Fixtures.logits(m, model);
            Fixtures.assertClose(expected, logits, 1e-5);
            loaded.save(copy, "tiny", BaseFormats.DENSE);
        }
        Map<?, ?> saved = JSON.readValue(copy.resolve("adapter_config.json").toFile(), Map.class);
        assertEquals(Map.of("model.layers.0.self_attn.q_proj", 2, "model.layers.1.self_attn.q_proj", 2),
                saved.get("rank_pattern"));
        assertEquals(Map.of("model.layers.1.self_attn.v_proj", 2), saved.get("alpha_pattern"));
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters reloaded = LoraAdapters.load(copy, model, m)) {
            assertArrayEquals(logits, Fixtures.logits(m, model), 0f);
        }
    }

    @Test
    void tensorWhoseShapeDoesNotFitTheBaseIsRefusedNamingItAndBothShapes() throws Exception {
        String bad = "base_model.model.model.layers.1.self_attn.v_proj.lora_A.weight";
        String message = refusal(Map.of(), tensors -> tensors.put(bad, new float[2 * 12]), Map.of(bad, new long[] {2, 12}));
        assertTrue(message.contains("'" + bad + "'") && message.contains("[2, 12]") && message.contains("[2, 16]"), message);
        assertTrue(message.startsWith(dir.resolve("adapter_model.safetensors").toString()), message);
    }

    @Test
    void doraConfigWithoutMagnitudesIsRefused() throws Exception {
        String message = refusal(Map.of("use_dora", true), t -> {}, Map.of());
        assertTrue(message.contains("no lora_magnitude_vector (use_dora is true)"), message);
    }

    @Test
    void trainedLoraBiasIsRefused() throws Exception {
        String message = refusal(Map.of("lora_bias", true), t -> {}, Map.of());
        assertTrue(message.contains("lora_bias") && message.contains("not supported"), message);
    }

    @Test
    void targetModuleTheModelLacksIsRefused() throws Exception {
        String message = refusal(Map.of("target_modules", List.of("q_proj", "c_attn")), t -> {}, Map.of());
        assertTrue(message.contains("target module 'c_attn'"), message);
    }

    @Test
    void tensorForALayerTheModelLacksIsRefused() throws Exception {
        String name = "base_model.model.model.layers.5.self_attn.q_proj.lora_A.weight";
        String message = refusal(Map.of(), t -> t.put(name, new float[32]), Map.of(name, new long[] {2, 16}));
        assertTrue(message.contains("'model.layers.5.self_attn.q_proj'") && message.contains("2 layers"), message);
    }

    @Test
    void modulesToSaveIsRefused() throws Exception {
        String message = refusal(Map.of("modules_to_save", List.of("embed_tokens", "lm_head")), t -> {}, Map.of());
        assertTrue(message.contains("modules_to_save") && message.contains("lm_head"), message);
    }

    /**
     * PEFT fields that change which modules or layers are adapted, or how, are refused when set, and accepted at
     * PEFT's defaults (null, empty, false, CAUSAL_LM).
     */
    @Test
    void fieldsThatChangeWhatIsAdaptedAreRefusedWhenSet() throws Exception {
        Map<String, Object> set = new java.util.LinkedHashMap<>();
        set.put("use_qalora", true);
        set.put("layers_to_transform", List.of(0));
        set.put("exclude_modules", List.of("q_proj"));
        set.put("trainable_token_indices", List.of(1));
        set.put("target_parameters", List.of("experts.gate_up_proj"));
        set.put("task_type", "SEQ_CLS");
        set.put("alora_invocation_tokens", List.of(5));
        for (Map.Entry<String, Object> e : set.entrySet()) {
            String message = refusal(Map.of(e.getKey(), e.getValue()), t -> {}, Map.of());
            assertTrue(message.contains(": " + e.getKey() + " ") && message.contains("not supported")
                    || message.contains("CAUSAL_LM"), message);
        }
        Map<String, Object> defaults = new java.util.HashMap<>();
        defaults.put("use_qalora", false);
        defaults.put("layers_to_transform", null);
        defaults.put("exclude_modules", List.of());
        defaults.put("target_parameters", null);
        defaults.put("task_type", "CAUSAL_LM");
        defaults.put("peft_type", "LORA");
        defaults.put("r", 16);
        Files.write(dir.resolve("adapter_config.json"), JSON.writeValueAsBytes(defaults));
        assertEquals(16, AdapterConfig.read(dir.resolve("adapter_config.json")).r());
    }

    /** PEFT matches target_modules and pattern keys with Python's re, whose named groups Java spells differently. */
    @Test
    void pythonNamedGroupsInTargetsAndPatternsAreRead() throws Exception {
        Files.write(dir.resolve("adapter_config.json"), JSON.writeValueAsBytes(Map.of("peft_type", "LORA", "r", 8,
                "target_modules", ".*\\.(?P<kind>q|v)_proj", "rank_pattern",
                Map.of("layers\\.(?P<n>0)\\.self_attn\\.(?P=n)?q_proj", 4))));
        AdapterConfig config = AdapterConfig.read(dir.resolve("adapter_config.json"));
        assertTrue(config.selects("model.layers.1.self_attn.q_proj") && config.selects("model.layers.0.self_attn.v_proj"));
        assertFalse(config.selects("model.layers.0.self_attn.k_proj"));
        assertEquals(4, config.rankOf("model.layers.0.self_attn.q_proj"));
        assertEquals(8, config.rankOf("model.layers.1.self_attn.q_proj"));
        // Python allows underscores and digits in group names, Java does not
        Files.write(dir.resolve("adapter_config.json"), JSON.writeValueAsBytes(Map.of("peft_type", "LORA", "r", 8,
                "target_modules", "model\\.layers\\.(?P<layer_idx2>\\d+)\\.self_attn\\.(?P<p_1>q|v)_proj(?P=p_1)?")));
        AdapterConfig underscored = AdapterConfig.read(dir.resolve("adapter_config.json"));
        assertTrue(underscored.selects("model.layers.3.self_attn.v_proj"));
        assertFalse(underscored.selects("model.layers.3.self_attn.k_proj"));
    }

    @Test
    void nonLoraTensorIsRefusedByName() throws Exception {
        String name = "base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector";
        String message = refusal(Map.of(), t -> t.put(name, new float[16]), Map.of(name, new long[] {16}));
        assertTrue(message.contains("'" + name + "'") && message.contains("DoRA"), message);
    }

    @Test
    void loraAWithoutLoraBIsRefused() throws Exception {
        String message = refusal(Map.of(),
                t -> t.remove("base_model.model.model.layers.0.self_attn.v_proj.lora_B.weight"), Map.of());
        assertTrue(message.contains("'model.layers.0.self_attn.v_proj' has lora_A but no lora_B"), message);
    }

    @Test
    void otherPeftTypesAreRefused() throws Exception {
        String message = refusal(Map.of("peft_type", "PREFIX_TUNING"), t -> {}, Map.of());
        assertTrue(message.contains("peft_type \"PREFIX_TUNING\"") && message.contains("only LORA"), message);
    }

    @Test
    void pickleOnlyAdapterIsRefusedWithAHint() throws Exception {
        Files.writeString(dir.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\"}");
        Files.write(dir.resolve("adapter_model.bin"), new byte[] {1, 2, 3});
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = new TinyModel(35).build(m)) {
            ModelException e = assertThrows(ModelException.class, () -> LoraAdapters.load(dir, model, m));
            assertTrue(e.getMessage().contains("adapter_model.bin") && e.getMessage().contains("safe_serialization"),
                    e.getMessage());
        }
    }

    /**
     * Writes a valid rank-2 q_proj/v_proj adapter, changed by {@code configChanges} and {@code tensorChanges}
     * ({@code shapes} for added tensors), loads it, and returns the refusal's message after checking that it is
     * one line and that the model was left without adapters.
     */
    private String refusal(Map<String, Object> configChanges, Consumer<Map<String, float[]>> tensorChanges,
            Map<String, long[]> shapes) throws Exception {
        TinyModel tiny = new TinyModel(36);
        Map<String, Object> config = new LinkedHashMap<>(Map.of("peft_type", "LORA", "r", 2, "lora_alpha", 4,
                "target_modules", List.of("q_proj", "v_proj")));
        config.putAll(configChanges);
        Files.write(dir.resolve("adapter_config.json"), JSON.writeValueAsBytes(config));
        Map<String, float[]> tensors = new LinkedHashMap<>();
        Map<String, long[]> allShapes = new HashMap<>(shapes);
        for (int layer = 0; layer < 2; layer++) {
            for (String module : List.of("self_attn.q_proj", "self_attn.v_proj")) {
                String key = "base_model.model.model.layers." + layer + "." + module;
                long[] shape = tiny.linearShape(module);
                tensors.put(key + ".lora_A.weight", new float[(int) (2 * shape[1])]);
                tensors.put(key + ".lora_B.weight", new float[(int) (shape[0] * 2)]);
                allShapes.putIfAbsent(key + ".lora_A.weight", new long[] {2, shape[1]});
                allShapes.putIfAbsent(key + ".lora_B.weight", new long[] {shape[0], 2});
            }
        }
        tensorChanges.accept(tensors);
        try (SafetensorsWriter w = SafetensorsWriter.builder(dir).optBaseName("adapter_model").build()) {
            for (Map.Entry<String, float[]> t : tensors.entrySet()) {
                w.addFloats(t.getKey(), DType.F32, allShapes.get(t.getKey()), t.getValue());
            }
        }
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m)) {
            ModelException e = assertThrows(ModelException.class, () -> LoraAdapters.load(dir, model, m));
            assertFalse(e.getMessage().contains("\n"), "one line: " + e.getMessage());
            for (int layer = 0; layer < 2; layer++) {
                for (String name : model.block(layer).linearNames()) {
                    assertFalse(model.block(layer).linear(name) instanceof LoraLinear, "a refused adapter changes nothing");
                }
            }
            return e.getMessage();
        }
    }

    /** Rounds to bfloat16 precision; such values of moderate size are exact in float16 too. */
    private static float[] representableInF16AndBf16(float[] v) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(v[i]));
            assertEquals(out[i], HalfFloats.f16ToFloat(HalfFloats.floatToF16(out[i])), 0f);
        }
        return out;
    }
}
