package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.checkpoint.PrequantizedModels;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.llama.ReferenceEval;
import io.qlora4j.model.safetensors.SafetensorsReader;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** eval, train, export and inspect over AQLM, GPTQ and AWQ checkpoints. */
class PrequantizedCommandsTest {
    /** The eval texts and the ids the tiny tokenizer gives them (its post-processor prepends <s> = 1). */
    private static final String TEXT = "w5 w9 w3 w11 w40 w41\nw7 w8 w30 w22\n";
    private static final List<int[]> IDS = List.of(new int[] {1, 5, 9, 3, 11, 40, 41}, new int[] {1, 7, 8, 30, 22});

    @TempDir
    Path dir;

    private final CliRun cli = new CliRun();

    private double evalLoss(String... extra) throws Exception {
        Path txt = dir.resolve("eval.txt");
        Files.writeString(txt, TEXT);
        String[] args = new String[extra.length + 3];
        args[0] = "eval";
        args[1] = "dataset=" + txt;
        args[2] = "--json";
        System.arraycopy(extra, 0, args, 3, extra.length);
        assertEquals(0, cli.run(args), cli.err());
        List<String> lines = cli.out().lines().toList();
        JsonNode result = new ObjectMapper().readTree(lines.get(lines.size() - 1));
        return result.path("loss").asDouble();
    }

    private static double reference(PrequantizedModels.Written w) throws Exception {
        return ReferenceEval.loss(ModelFamilies.read(w.dir().resolve("config.json")), w.weights(), IDS);
    }

    private void evalEqualsTheFloat64Llama(PrequantizedModels.Written w) throws Exception {
        double loss = evalLoss("model_name_or_path=" + w.dir());
        double expected = reference(w);
        assertEquals(expected, loss, 1e-4 * expected, w.dir().toString());
    }

    @Test
    void evalOverAqlmEqualsAFloat64LlamaOverTheDecodedWeights() throws Exception {
        evalEqualsTheFloat64Llama(PrequantizedModels.aqlm(dir.resolve("a"), 1, 16, 8));
        evalEqualsTheFloat64Llama(PrequantizedModels.aqlm(dir.resolve("b"), 2, 8, 8));
    }

    @Test
    void evalOverGptqAndAwqEqualsAFloat64LlamaOverTheDequantizedWeights() throws Exception {
        evalEqualsTheFloat64Llama(PrequantizedModels.gptq(dir.resolve("sym"), 4, 32, false, true, true));
        evalEqualsTheFloat64Llama(PrequantizedModels.gptq(dir.resolve("asym"), 4, 32, true, false, true));
        evalEqualsTheFloat64Llama(PrequantizedModels.awq(dir.resolve("awq"), 32));
    }

    private Path train(Path model, Path adapter) throws Exception {
        Path data = dir.resolve("pt.jsonl");
        Files.writeString(data, "{\"text\": \"w5 w9 w3 w11 w40 w41 w7 w8 w30 w22\"}\n"
                + "{\"text\": \"w12 w13 w14 w15 w16 w17 w18 w19\"}\n");
        assertEquals(0, cli.run("train", "model_name_or_path=" + model, "dataset=" + data, "stage=pt",
                "output_dir=" + adapter, "lora_rank=4", "lora_alpha=8", "learning_rate=0.05", "max_steps=3",
                "cutoff_len=16"), cli.err());
        return adapter;
    }

    @Test
    void loraOverAqlmSavesAPeftAdapterAndMergesIntoTheDecodedBase() throws Exception {
        PrequantizedModels.Written w = PrequantizedModels.aqlm(dir.resolve("m"), 2, 8, 8);
        Path adapter = train(w.dir(), dir.resolve("adapter"));
        assertTrue(Files.isRegularFile(adapter.resolve("adapter_config.json")));
        try (SafetensorsReader r = SafetensorsReader.open(adapter.resolve("adapter_model.safetensors"))) {
            assertTrue(r.contains("base_model.model.model.layers.0.mlp.down_proj.lora_A.weight"));
        }
        double withAdapter = evalLoss("model_name_or_path=" + w.dir(), "adapter_name_or_path=" + adapter);
        assertTrue(Math.abs(withAdapter - reference(w)) > 1e-3, "the adapter changes the model");

        Path merged = dir.resolve("merged");
        assertEquals(0, cli.run("export", "model_name_or_path=" + w.dir(), "adapter_name_or_path=" + adapter,
                "export_dir=" + merged, "export_dtype=float32"), cli.err());
        assertFalse(Files.readString(merged.resolve("config.json")).contains("quantization_config"));
        double mergedLoss = evalLoss("model_name_or_path=" + merged);
        assertEquals(withAdapter, mergedLoss, 1e-5 * withAdapter);
    }

    @Test
    void loraOverGptqHasTheEffectOfItsLowRankUpdateOnTheDequantizedWeights() throws Exception {
        PrequantizedModels.Written w = PrequantizedModels.gptq(dir.resolve("m"), 4, 32, true, false, true);
        Path adapter = train(w.dir(), dir.resolve("adapter"));
        double withAdapter = evalLoss("model_name_or_path=" + w.dir(), "adapter_name_or_path=" + adapter);
        // W + (alpha / r) B A on every adapted module, in float64, then the independent Llama
        Map<String, float[]> updated = new HashMap<>(w.weights());
        try (SafetensorsReader r = SafetensorsReader.open(adapter.resolve("adapter_model.safetensors"))) {
            for (String key : w.weights().keySet()) {
                String module = key.substring(0, key.length() - ".weight".length());
                String a = "base_model.model." + module + ".lora_A.weight";
                if (!r.contains(a)) {
                    continue;
                }
                float[] am = r.floats(a);
                float[] bm = r.floats("base_model.model." + module + ".lora_B.weight");
                float[] base = w.weights().get(key);
                int rank = 4;
                int in = am.length / rank;
                int out = bm.length / rank;
                float[] sum = new float[base.length];
                for (int o = 0; o < out; o++) {
                    for (int i = 0; i < in; i++) {
                        double d = 0;
                        for (int k = 0; k < rank; k++) {
                            d += (double) bm[o * rank + k] * am[k * in + i];
                        }
                        sum[o * in + i] = (float) (base[o * in + i] + 2.0 * d);
                    }
                }
                updated.put(key, sum);
            }
        }
        double expected = ReferenceEval.loss(ModelFamilies.read(w.dir().resolve("config.json")), updated, IDS);
        assertEquals(expected, withAdapter, 1e-4 * expected);
        assertTrue(Math.abs(expected - reference(w)) > 1e-3, "the adapter changes the model");
    }

    /**
     * export merges into a pre-quantized base as stored, so quantization keys naming another format are refused
     * naming both, as eval refuses them, and nothing is written; the stored format's own keys are accepted.
     */
    @Test
    void exportRefusesQuantizationKeysNamingAnotherFormatThanThePrequantizedBase() throws Exception {
        Path model = PrequantizedModels.gptq(dir.resolve("m"), 4, 32, false, true, true).dir();
        Path out = dir.resolve("out");
        assertEquals(1, cli.run("export", "model_name_or_path=" + model, "export_dir=" + out,
                "quantization_method=awq", "quantization_bit=4"));
        assertEquals("qlora4j export: " + model.resolve("config.json") + ": the checkpoint is stored in GPTQ 4-bit,"
                + " group 32, symmetric, gptq (quantization_config), but the job asks for quantization_method awq,"
                + " quantization_bit 4; leave quantization_bit unset to load the checkpoint as stored",
                cli.err().strip());
        assertFalse(Files.exists(out));
        assertEquals(0, cli.run("export", "model_name_or_path=" + model, "export_dir=" + out,
                "quantization_method=gptq", "quantization_bit=4"), cli.err());
    }

    @Test
    void inspectReadsTheStoredFormatAndItsBitsPerParameter() throws Exception {
        Path model = PrequantizedModels.aqlm(dir.resolve("m"), 2, 8, 8).dir();
        assertEquals(0, cli.run("inspect", "model_name_or_path=" + model), cli.err());
        assertTrue(cli.out().contains("stored: linear layers in AQLM 2x8 g8 (quantization_config)"), cli.out());
        assertTrue(cli.out().contains("blocks of projections in AQLM 2x8 g8 ("), cli.out());
        Path gptq = PrequantizedModels.gptq(dir.resolve("g"), 4, 32, false, true, true).dir();
        assertEquals(0, cli.run("inspect", "model_name_or_path=" + gptq), cli.err());
        assertTrue(cli.out().contains("stored: linear layers in GPTQ 4-bit, group 32, symmetric, gptq"), cli.out());
    }
}
