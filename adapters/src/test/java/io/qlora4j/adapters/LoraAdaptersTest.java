package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.qlora4j.model.decoder.CausalLM;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;

/** Attaching adapters to a tiny model: which layers, PEFT's parameter names, initialisation, unchanged outputs. */
class LoraAdaptersTest {
    private static final List<String> SHORT = List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj",
            "down_proj");

    /**
     * A as PEFT 0.20 draws it in transformers 5.12.1 after {@code set_seed(7)}: {@code get_peft_model(r=4,
     * lora_alpha=8, target_modules="all-linear")} over a Llama of these shapes (the first four values of two modules,
     * and the float64 sum of each).
     */
    @Test
    void aIsPeftsDrawFromTheSeededTorchGenerator() {
        TinyModel tiny = new TinyModel(1);
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters adapters = LoraAdapters.attach(model, new LoraSettings(4, 8, 0, false, List.of("all")),
                        m, 7)) {
            Map<String, NDArray> p = adapters.parameters();
            float[] q = p.get("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight").toFloatArray();
            assertArrayEquals(new float[] {0.1021195650100708f, 0.09893164038658142f, -0.1545884609222412f,
                -0.07795828580856323f}, Arrays.copyOf(q, 4));
            assertEquals(0.0130537748336792, sum(q), 1e-12);
            float[] down = p.get("base_model.model.model.layers.1.mlp.down_proj.lora_A.weight").toFloatArray();
            assertArrayEquals(new float[] {0.03385022655129433f, 0.05114997923374176f, 0.11964227259159088f,
                -0.03846137598156929f}, Arrays.copyOf(down, 4));
            assertEquals(2.218114171468187, sum(down), 1e-12);
        }
    }

    private static double sum(float[] values) {
        double s = 0;
        for (float v : values) {
            s += v;
        }
        return s;
    }

    @Test
    void allTargetsWrapEverySevenLinearsOfEveryBlockUnderPeftNamesButNotLmHead() {
        TinyModel tiny = new TinyModel(1);
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters adapters = LoraAdapters.attach(model, LoraSettings.defaults(4), m, 1)) {
            List<String> expected = new ArrayList<>();
            for (int layer = 0; layer < 2; layer++) {
                for (String name : SHORT) {
                    String module = (SHORT.indexOf(name) < 4 ? "self_attn." : "mlp.") + name;
                    String key = "base_model.model.model.layers." + layer + "." + module;
                    expected.add(key + ".lora_A.weight");
                    expected.add(key + ".lora_B.weight");
                    assertInstanceOf(LoraLinear.class, model.block(layer).linear(module));
                }
            }
            assertEquals(expected, new ArrayList<>(adapters.parameters().keySet()));
            assertFalse(model.lmHead() instanceof LoraLinear);
            Map<String, NDArray> p = adapters.parameters();
            // q_proj: [heads * hd = 16, hidden 16]; k_proj: [kv * hd = 8, 16]; down_proj: [16, inter 24].
            assertArrayEquals(new long[] {4, 16}, p.get("base_model.model.model.layers.1.self_attn.k_proj.lora_A.weight").getShape().getShape());
            assertArrayEquals(new long[] {8, 4}, p.get("base_model.model.model.layers.1.self_attn.k_proj.lora_B.weight").getShape().getShape());
            assertArrayEquals(new long[] {4, 24}, p.get("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight").getShape().getShape());
            assertArrayEquals(new long[] {16, 4}, p.get("base_model.model.model.layers.0.mlp.down_proj.lora_B.weight").getShape().getShape());
            p.values().forEach(a -> assertTrue(a.hasGradient(), "LoRA matrices require gradients"));
        }
    }

    @Test
    void namedTargetsWrapOnlyThoseModules() {
        TinyModel tiny = new TinyModel(2);
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters adapters = LoraAdapters.attach(model, new LoraSettings(2, 4, 0, false,
                        List.of("v_proj", "q_proj")), m, 2)) {
            assertEquals(List.of("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.v_proj",
                    "model.layers.1.self_attn.q_proj", "model.layers.1.self_attn.v_proj"),
                    new ArrayList<>(adapters.modules().keySet()));
            assertFalse(model.block(0).linear("self_attn.k_proj") instanceof LoraLinear);
            assertFalse(model.block(1).linear("mlp.down_proj") instanceof LoraLinear);
        }
    }

    @Test
    void unknownTargetIsRefusedListingTheValidNames() {
        IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                () -> new LoraSettings(8, 16, 0, false, List.of("q_proj", "c_attn")));
        assertTrue(e.getMessage().contains("'c_attn'"), e.getMessage());
        assertTrue(e.getMessage().contains("all, q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj"), e.getMessage());
        assertThrows(IllegalArgumentException.class, () -> new LoraSettings(8, 16, 0, false, List.of("lm_head")));
    }

    @Test
    void settingsRefuseOutOfRangeValuesAndDefaultAsLlamaFactory() {
        assertThrows(IllegalArgumentException.class, () -> new LoraSettings(0, 16, 0, false, List.of("all")));
        assertThrows(IllegalArgumentException.class, () -> new LoraSettings(8, 0, 0, false, List.of("all")));
        assertThrows(IllegalArgumentException.class, () -> new LoraSettings(8, 16, 1.0, false, List.of("all")));
        assertThrows(IllegalArgumentException.class, () -> new LoraSettings(8, 16, 0, false, List.of()));
        LoraSettings d = LoraSettings.defaults(8);
        assertEquals(new LoraSettings(8, 16, 0, false, List.of("all")), d);
        assertEquals(2.0, d.scaling());
    }

    @Test
    void initialisationDrawsAWithinKaimingUniformBoundAndSetsBToZero() {
        TinyModel tiny = new TinyModel(3);
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                CausalLM twin = tiny.build(m);
                LoraAdapters adapters = LoraAdapters.attach(model, LoraSettings.defaults(8), m, 11);
                LoraAdapters same = LoraAdapters.attach(twin, LoraSettings.defaults(8), m, 11)) {
            for (Map.Entry<String, LoraLinear> e : adapters.modules().entrySet()) {
                float[] a = e.getValue().loraA().toFloatArray();
                double bound = 1 / Math.sqrt(e.getValue().inFeatures()); // kaiming_uniform_(a=sqrt(5)) on [r, in]
                double max = 0;
                double sum = 0;
                for (float v : a) {
                    max = Math.max(max, Math.abs(v));
                    sum += v;
                }
                assertTrue(max <= bound, e.getKey() + ": |A| " + max + " exceeds " + bound);
                assertTrue(max > 0.9 * bound, e.getKey() + ": A does not spread over its range: " + max);
                // mean of n uniforms on [-bound, bound]: standard deviation bound / sqrt(3n)
                assertEquals(0, sum / a.length, 4 * bound / Math.sqrt(3.0 * a.length), e.getKey() + ": A is not centred");
                for (float v : e.getValue().loraB().toFloatArray()) {
                    assertEquals(0f, v);
                }
                assertArrayEquals(a, same.modules().get(e.getKey()).loraA().toFloatArray(), "same seed, same A");
            }
        }
    }

    @Test
    void attachingLeavesLogitsIdenticalBecauseBIsZero() {
        TinyModel tiny = new TinyModel(4);
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m)) {
            NDArray ids = TinyModel.idsArray(m, TinyModel.ids(7));
            float[] before = model.forward(ids, null).toFloatArray();
            try (LoraAdapters adapters = LoraAdapters.attach(model, new LoraSettings(4, 8, 0.1, true, List.of("all")), m, 5)) {
                adapters.setTraining(true);
                assertArrayEquals(before, model.forward(ids, null).toFloatArray(), 0f);
            }
        }
    }

    @Test
    void attachingTwiceIsRefused() {
        TinyModel tiny = new TinyModel(5);
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters adapters = LoraAdapters.attach(model, LoraSettings.defaults(2), m, 1)) {
            IllegalStateException e = assertThrows(IllegalStateException.class,
                    () -> LoraAdapters.attach(model, new LoraSettings(2, 4, 0, false, List.of("v_proj")), m, 1));
            assertTrue(e.getMessage().contains("model.layers.0.self_attn.v_proj already has a LoRA adapter"), e.getMessage());
            assertEquals(14, adapters.modules().size());
        }
    }
}
