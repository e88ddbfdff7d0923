package io.qlora4j.adapters;

import static io.qlora4j.adapters.ExportFixtures.logits;
import static io.qlora4j.adapters.ExportFixtures.maxAbs;
import static io.qlora4j.adapters.ExportFixtures.maxDifference;
import static io.qlora4j.adapters.ExportFixtures.tensor;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.checkpoint.CheckpointQuantizer;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.checkpoint.TinyModels;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.BnbStateDict;
import java.nio.ByteBuffer;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A merged export computes what base + adapter computed: dequantized, original, bf16, several adapters, 4-bit. */
class MergeEquivalenceTest {
    private static final String PEFT = "base_model.model.";

    @TempDir
    Path dir;

    @Test
    void dequantizedFloat32ExportComputesTheNf4BasePlusAdapter() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        Path adapter = ExportFixtures.adapter(base, dir.resolve("adapter"), BaseFormats.QLORA, 5);
        MergedExport export = MergedExport.builder(base, List.of(adapter)).optDtype(DType.F32).build();
        assertEquals(MergeBase.DEQUANTIZED, export.mergeBase(), "the adapter records its 4-bit base");
        assertEquals(BaseFormats.QLORA, export.baseQuantization());
        Path out = dir.resolve("merged");
        assertEquals(7, export.writeTo(out).mergedModules());

        float[] expected = logits(base, BaseFormats.QLORA, adapter);
        float[] merged = logits(out);
        assertTrue(maxAbs(expected) > 0.01, "logits of a meaningful size: " + maxAbs(expected));
        assertTrue(maxDifference(expected, merged) <= 1e-5, "max difference " + maxDifference(expected, merged));
        double fromDense = maxDifference(logits(base, null, adapter), merged);
        assertTrue(fromDense > 1e-3, "dense base + adapter is another function: " + fromDense);
    }

    @Test
    void dequantizedMergedWeightIsTheNf4RoundTripPlusScaledBTimesA() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        Path adapter = ExportFixtures.adapter(base, dir.resolve("adapter"), BaseFormats.QLORA, 6);
        Path out = float32Export(base, List.of(adapter), "merged");
        String module = "model.layers.0.mlp.down_proj";
        long[] shape = ExportFixtures.projectionShape("mlp.down_proj");
        BlockwiseQuantizer nf4 = BlockwiseQuantizer.builder().build(); // NF4, blocksize 64, double quantization
        float[] w = nf4.dequantize(nf4.quantize(tensor(base, module + ".weight"), shape));
        assertClose(expectedMerge(w, shape, module, List.of(adapter)), tensor(out, module + ".weight"), 1e-6);
    }

    @Test
    void doraExportComputesTheBasePlusItsDoraAdapterWithin1e5OnDenseAndNf4Bases() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        LoraSettings dora = ExportFixtures.SETTINGS.withVariant(Dora.INSTANCE);
        for (BaseFormat trainedOn : java.util.Arrays.asList(null, BaseFormats.QLORA)) {
            String name = trainedOn == null ? "dense" : "nf4";
            Path adapter = ExportFixtures.adapter(base, dir.resolve(name + "-adapter"), trainedOn, 12, dora);
            Path out = float32Export(base, List.of(adapter), name + "-merged");
            float[] expected = logits(base, trainedOn, adapter);
            assertTrue(maxDifference(expected, logits(out)) <= 1e-5, name + ": " + maxDifference(expected, logits(out)));
            assertTrue(maxDifference(expected, logits(base, trainedOn, ExportFixtures.adapter(base,
                    dir.resolve(name + "-lora"), trainedOn, 12))) > 1e-3, "DoRA computes another function than LoRA");
        }
    }

    @Test
    void pissaAndLoftqExportsRebuildTheirBaseAndComputeBasePlusAdapterWithin1e5() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        for (AdapterInit init : List.of(AdapterInits.pissa(2), AdapterInits.loftq(4, 2))) {
            String name = init.describe().substring(0, 5).trim();
            LoraSettings settings = ExportFixtures.SETTINGS.withInit(init);
            Path adapter = ExportFixtures.adapter(base, dir.resolve(name), BaseFormats.QLORA, 13, settings);
            Path out = float32Export(base, List.of(adapter), name + "-merged");
            float[] expected = logits(base, BaseFormats.QLORA, adapter);
            assertTrue(maxDifference(expected, logits(out)) <= 1e-5, name + ": " + maxDifference(expected, logits(out)));
            assertTrue(maxDifference(expected, logits(base, BaseFormats.QLORA, ExportFixtures.adapter(base,
                    dir.resolve(name + "-lora"), BaseFormats.QLORA, 13))) > 1e-3, name + " rebuilt another base");
        }
    }

    @Test
    void originalFloat32ExportComputesTheDenseBasePlusSeveralAdaptersInOrder() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        Path first = ExportFixtures.adapter(base, dir.resolve("first"), null, 7);
        Path second = ExportFixtures.adapter(base, dir.resolve("second"), null, 8);
        MergedExport one = MergedExport.builder(base, List.of(first)).optDtype(DType.F32).build();
        assertEquals(MergeBase.ORIGINAL, one.mergeBase(), "no adapter records a 4-bit base");
        assertNull(one.baseQuantization());
        Path out = dir.resolve("one");
        one.writeTo(out);
        assertTrue(maxDifference(logits(base, null, first), logits(out)) <= 1e-5);

        Path both = float32Export(base, List.of(first, second), "both");
        for (String name : List.of("self_attn.q_proj", "mlp.gate_proj")) {
            String module = "model.layers.0." + name;
            long[] shape = ExportFixtures.projectionShape(name);
            assertClose(expectedMerge(tensor(base, module + ".weight"), shape, module, List.of(first, second)),
                    tensor(both, module + ".weight"), 1e-6);
        }
    }

    @Test
    void bfloat16ExportIsTheFloat32MergeRoundedToTheNearestBfloat16() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        Path adapter = ExportFixtures.adapter(base, dir.resolve("adapter"), BaseFormats.QLORA, 9);
        Path f32 = float32Export(base, List.of(adapter), "f32");
        Path bf16 = dir.resolve("bf16");
        MergedExport.builder(base, List.of(adapter)).build().writeTo(bf16);
        try (SafetensorsReader wide = SafetensorsReader.open(f32); SafetensorsReader narrow = SafetensorsReader.open(bf16)) {
            for (var t : narrow.tensors()) {
                assertEquals(DType.BF16, t.dtype(), t.name());
                float[] exact = wide.floats(t.name());
                float[] rounded = narrow.floats(t.name());
                for (int i = 0; i < exact.length; i++) {
                    // Half a unit in the last place of bfloat16's 8-bit significand.
                    double halfUlp = exact[i] == 0 ? 0 : Math.scalb(1.0, Math.getExponent(exact[i]) - 8);
                    assertTrue(Math.abs(rounded[i] - exact[i]) <= halfUlp, t.name() + "[" + i + "]: " + exact[i]
                            + " stored as " + rounded[i]);
                }
            }
        }
        assertTrue(maxDifference(logits(f32), logits(bf16)) < 0.05 * maxAbs(logits(f32)));
    }

    @Test
    void bitsandbytesBaseMergesIntoItsStoredWeightsAndLosesItsQuantizationConfig() throws Exception {
        Path nf4 = dir.resolve("nf4");
        CheckpointQuantizer.builder(BaseFormats.QLORA).build().quantize(TinyModels.writeTinyModel(dir), nf4);
        Path adapter = ExportFixtures.adapter(nf4, dir.resolve("adapter"), null, 10);
        MergedExport export = MergedExport.builder(nf4, List.of(adapter)).optDtype(DType.F32).build();
        assertEquals(BaseFormats.QLORA, export.storedFormat());
        assertEquals(MergeBase.DEQUANTIZED, export.mergeBase());
        assertNull(export.baseQuantization(), "the stored 4-bit weights are used as they are");
        Path out = dir.resolve("merged");
        export.writeTo(out);
        assertTrue(maxDifference(logits(nf4, null, adapter), logits(out)) <= 1e-5);
        JsonNode config = new ObjectMapper().readTree(out.resolve("config.json").toFile());
        assertFalse(config.has("quantization_config"));
        assertEquals("float32", config.get("torch_dtype").asText());
        try (SafetensorsReader r = SafetensorsReader.open(out)) {
            assertTrue(r.tensors().stream().noneMatch(t -> BnbStateDict.isSideEntry(t.name())));
        }
    }

    /**
     * A 4-bit export holds the bitsandbytes entries of the merged weights as the bfloat16 export holds them (the
     * values its quant state's dtype names, which transformers would quantize from that export).
     */
    @Test
    void fourBitExportHoldsTheBitsandbytesEntriesOfTheMergedWeights() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        Path adapter = ExportFixtures.adapter(base, dir.resolve("adapter"), BaseFormats.QLORA, 11);
        Path f32 = float32Export(base, List.of(adapter), "f32");
        Path bf16 = dir.resolve("bf16");
        MergedExport.builder(base, List.of(adapter)).build().writeTo(bf16);
        Path nf4 = dir.resolve("nf4");
        MergedExport.builder(base, List.of(adapter)).optRequantize(BaseFormats.QLORA).build().writeTo(nf4);
        BlockwiseQuantizer quantizer = BlockwiseQuantizer.builder().build();
        try (SafetensorsReader r = SafetensorsReader.open(nf4)) {
            for (String name : ModelFamilies.read(base.resolve("config.json")).linearNames()) {
                String key = "model.layers.0." + name + ".weight";
                var entries = BnbStateDict.entries(key,
                        quantizer.quantize(tensor(bf16, key), ExportFixtures.projectionShape(name)), "bfloat16");
                for (BnbStateDict.Entry e : entries) {
                    ByteBuffer stored = r.bytes(e.key());
                    byte[] bytes = new byte[stored.remaining()];
                    stored.get(bytes);
                    assertArrayEquals(e.data(), bytes, e.key());
                }
            }
        }
        JsonNode q = new ObjectMapper().readTree(nf4.resolve("config.json").toFile()).get("quantization_config");
        assertEquals("nf4", q.get("bnb_4bit_quant_type").asText());
        assertEquals("bfloat16", q.get("bnb_4bit_compute_dtype").asText());
        assertTrue(maxDifference(logits(f32), logits(nf4)) < 0.2 * maxAbs(logits(f32)), "the 4-bit export loads");
    }

    /** Exports {@code base} merged with {@code adapters} as float32 with the default merge base into {@code dir/name}. */
    private Path float32Export(Path base, List<Path> adapters, String name) throws Exception {
        Path out = dir.resolve(name);
        MergedExport.builder(base, adapters).optDtype(DType.F32).build().writeTo(out);
        return out;
    }

    /** {@code w + sum over adapters of scaling * B @ A} for one module, in float64 from the stored matrices. */
    private static double[] expectedMerge(float[] w, long[] shape, String module, List<Path> adapters) throws Exception {
        int out = (int) shape[0];
        int in = (int) shape[1];
        int r = ExportFixtures.SETTINGS.rank();
        double scaling = ExportFixtures.SETTINGS.scaling();
        double[] merged = new double[w.length];
        for (int i = 0; i < w.length; i++) {
            merged[i] = w[i];
        }
        for (Path adapter : adapters) {
            float[] a = tensor(adapter, PEFT + module + ".lora_A.weight");
            float[] b = tensor(adapter, PEFT + module + ".lora_B.weight");
            for (int i = 0; i < out; i++) {
                for (int j = 0; j < in; j++) {
                    double sum = 0;
                    for (int k = 0; k < r; k++) {
                        sum += (double) b[i * r + k] * a[k * in + j];
                    }
                    merged[i * in + j] += scaling * sum;
                }
            }
        }
        return merged;
    }

    private static void assertClose(double[] expected, float[] actual, double tolerance) {
        assertEquals(expected.length, actual.length);
        double worst = 0;
        for (int i = 0; i < expected.length; i++) {
            worst = Math.max(worst, Math.abs(expected[i] - actual[i]));
        }
        assertTrue(worst <= tolerance, "max difference " + worst);
    }
}
