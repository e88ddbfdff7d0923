package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.generation.Perplexity;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.HalfFloats;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.CsvSource;

/**
 * DoRA adapters in PEFT's files: {@code use_dora: true} and a {@code lora_magnitude_vector [out]} per module, saved
 * without {@code .weight} ({@code LoraModel._get_adapter_state_dict}) and read with or without it; evaluation with
 * such an adapter against an independent float64 forward ({@link ReferenceForward}).
 */
class DoraFilesTest {
    private static final String PREFIX = "base_model.model.";
    private static final int[] IDS = {1, 4, 9, 3, 7, 10, 2, 5, 8};

    @TempDir
    Path dir;

    @ParameterizedTest(name = "{0} base, magnitude key {1}, {2}")
    @CsvSource({"dense, saved, F32", "nf4, saved, F16", "dense, in-memory, BF16", "nf4, in-memory, F32"})
    void peftWrittenDoraAdapterLoadsAndEvalLossEqualsAFloat64ComputationWithin1e4(String base, String keys,
            DType dtype) throws Exception {
        TinyModel tiny = new TinyModel(40);
        BlockwiseQuantizer nf4 = BlockwiseQuantizer.builder().build();
        TinyModel reference = new TinyModel(40);
        if (base.equals("nf4")) {
            for (int l = 0; l < 2; l++) {
                for (String name : tiny.config.linearNames()) {
                    String key = TinyModel.weightName(l, name);
                    reference.weights.put(key, nf4.dequantize(nf4.quantize(tiny.weights.get(key), tiny.linearShape(name))));
                }
            }
        }
        Map<String, ReferenceForward.Lora> updates = writePeftDora(tiny, reference, dtype,
                keys.equals("saved") ? ".lora_magnitude_vector" : ".lora_magnitude_vector.default.weight");
        double expected = new ReferenceForward(reference, updates).loss(IDS);
        long[] ids = new long[IDS.length];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = IDS[i];
        }
        try (NDManager m = NDManager.newBaseManager();
                CausalLM model = base.equals("nf4")
                        ? tiny.build(m, (w, out, in) -> QuantizedLinear.upload(nf4.quantize(w, new long[] {out, in}), null, m))
                        : tiny.build(m);
                LoraAdapters loaded = LoraAdapters.load(dir, model, m)) {
            assertEquals(Dora.INSTANCE, loaded.settings().variant());
            double loss = Perplexity.of(model, ids).loss();
            assertEquals(expected, loss, 1e-4 * expected, "eval loss");
            double plain = new ReferenceForward(reference, Map.of()).loss(IDS);
            assertTrue(Math.abs(plain - expected) > 1e-2, "the adapter changes the loss: " + plain + " vs " + expected);
        }
    }

    @Test
    void savedDoraAdapterHasPeftNamesShapesAndConfigAndReloadsToTheSameOutputs() throws Exception {
        TinyModel tiny = new TinyModel(41);
        LoraSettings settings = new LoraSettings(2, 4, 0, false, List.of("q_proj", "down_proj")).withVariant(Dora.INSTANCE);
        float[] logits;
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters adapters = LoraAdapters.attach(model, settings, m, 2)) {
            Fixtures.randomizeB(adapters, 3);
            logits = Fixtures.logits(m, model);
            adapters.save(dir, "tiny", BaseFormats.DENSE);
        }
        JsonNode config = new ObjectMapper().readTree(dir.resolve("adapter_config.json").toFile());
        assertTrue(config.get("use_dora").asBoolean());
        try (SafetensorsReader reader = SafetensorsReader.open(dir.resolve("adapter_model.safetensors"))) {
            List<String> names = new ArrayList<>();
            reader.tensors().forEach(t -> names.add(t.name()));
            List<String> expected = new ArrayList<>();
            for (int layer = 0; layer < 2; layer++) {
                for (String module : List.of("self_attn.q_proj", "mlp.down_proj")) {
                    String key = PREFIX + "model.layers." + layer + "." + module;
                    expected.addAll(List.of(key + ".lora_A.weight", key + ".lora_B.weight", key + ".lora_magnitude_vector"));
                }
            }
            assertEquals(expected.stream().sorted().toList(), names.stream().sorted().toList());
            assertArrayEquals(new long[] {16}, reader.info(PREFIX + "model.layers.0.self_attn.q_proj.lora_magnitude_vector")
                    .shape());
            assertArrayEquals(new long[] {16}, reader.info(PREFIX + "model.layers.1.mlp.down_proj.lora_magnitude_vector")
                    .shape());
            assertArrayEquals(new long[] {2, 24}, reader.info(PREFIX + "model.layers.1.mlp.down_proj.lora_A.weight").shape());
        }
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters loaded = LoraAdapters.load(dir, model, m)) {
            assertEquals(settings, loaded.settings());
            assertArrayEquals(logits, Fixtures.logits(m, model), 0f);
        }
    }

    /** The values as a {@code dtype} file holds them. */
    private static float[] stored(float[] v, DType dtype) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = dtype == DType.F16 ? HalfFloats.f16ToFloat(HalfFloats.floatToF16(v[i]))
                    : HalfFloats.bf16ToFloat(HalfFloats.floatToBf16(v[i]));
        }
        return out;
    }

    /**
     * Writes a rank-3 DoRA adapter on q/v/down projections as PEFT lays it out (few config keys, magnitudes under
     * {@code magnitudeSuffix}, weights as {@code dtype}) and returns its float64 updates; the magnitudes are the row
     * norms of {@code reference}'s {@code W + s B A} times factors in [0.8, 1.2], as training leaves them.
     */
    private Map<String, ReferenceForward.Lora> writePeftDora(TinyModel tiny, TinyModel reference, DType dtype,
            String magnitudeSuffix) throws Exception {
        Random random = new Random(42);
        int rank = 3;
        double scaling = 6.0 / rank;
        Map<String, ReferenceForward.Lora> updates = new HashMap<>();
        try (SafetensorsWriter w = SafetensorsWriter.builder(dir).optBaseName("adapter_model").build()) {
            for (int layer = 0; layer < 2; layer++) {
                for (String module : List.of("self_attn.q_proj", "self_attn.v_proj", "mlp.down_proj")) {
                    String path = "model.layers." + layer + "." + module;
                    long[] shape = tiny.linearShape(module);
                    int out = (int) shape[0];
                    int in = (int) shape[1];
                    float[] a = ExportFixtures.representableInF16(Fixtures.scaled(Fixtures.gaussian(random, rank * in), 0.2f));
                    float[] b = ExportFixtures.representableInF16(Fixtures.scaled(Fixtures.gaussian(random, out * rank), 0.2f));
                    float[] weight = reference.weights.get(path + ".weight");
                    float[] magnitude = new float[out];
                    for (int o = 0; o < out; o++) {
                        double norm = 0;
                        for (int j = 0; j < in; j++) {
                            double v = weight[o * in + j];
                            for (int r = 0; r < rank; r++) {
                                v += scaling * b[o * rank + r] * a[r * in + j];
                            }
                            norm += v * v;
                        }
                        magnitude[o] = (float) (Math.sqrt(norm) * (0.8 + 0.4 * random.nextDouble()));
                    }
                    if (dtype != DType.F32) {
                        magnitude = stored(magnitude, dtype);
                        a = stored(a, dtype);
                        b = stored(b, dtype);
                    }
                    w.addFloats(PREFIX + path + ".lora_A.weight", dtype, new long[] {rank, in}, a);
                    w.addFloats(PREFIX + path + ".lora_B.weight", dtype, new long[] {out, rank}, b);
                    w.addFloats(PREFIX + path + magnitudeSuffix, dtype, new long[] {out}, magnitude);
                    updates.put(path, new ReferenceForward.Lora(Fixtures.toDoubles(a), Fixtures.toDoubles(b), rank, scaling,
                            Fixtures.toDoubles(magnitude)));
                }
            }
        }
        Files.writeString(dir.resolve("adapter_config.json"), """
                {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": 3, "lora_alpha": 6, "use_dora": true,
                 "lora_bias": false, "target_modules": ["q_proj", "v_proj", "down_proj"], "loftq_config": {}}""");
        return updates;
    }
}
