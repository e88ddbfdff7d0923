package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.engine.Engine;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.qlora4j.model.DenseEmbedding;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.QuantizedTensor;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * LoRA gradients of a whole tiny model for {@code L = sum(logits * U)} with fixed random U: through an NF4 base
 * against a dense base holding the dequantized weights, and against float64 central finite differences of an
 * independent float64 forward ({@link ReferenceForward}). The DJL model cannot serve as its own float64 reference:
 * its RMSNorm, RoPE tables and mask are float32 by design.
 */
class LoraGradientTest {
    private static final int[] IDS = TinyModel.ids(6);

    @Test
    void loraGradientsThroughNf4BaseEqualThoseThroughDenseDequantizedBase() {
        TinyModel tiny = new TinyModel(6);
        BlockwiseQuantizer nf4 = BlockwiseQuantizer.builder().build(); // NF4, blocksize 64, double quantization
        LoraSettings settings = new LoraSettings(4, 8, 0, false, List.of("all"));
        try (NDManager m = NDManager.newBaseManager();
                CausalLM quantized = tiny.build(m, (w, out, in) ->
                        QuantizedLinear.upload(nf4.quantize(w, new long[] {out, in}), null, m));
                CausalLM dense = tiny.build(m, (w, out, in) -> {
                    QuantizedTensor q = nf4.quantize(w, new long[] {out, in});
                    return new DenseLinear(m.create(nf4.dequantize(q), new Shape(out, in)), null);
                });
                CausalLM original = tiny.build(m);
                LoraAdapters onNf4 = LoraAdapters.attach(quantized, settings, m, 9);
                LoraAdapters onDense = LoraAdapters.attach(dense, settings, m, 9);
                LoraAdapters onOriginal = LoraAdapters.attach(original, settings, m, 9)) {
            float[] upstream = Fixtures.gaussian(new Random(11), IDS.length * tiny.config.vocabSize());
            for (LoraAdapters adapters : List.of(onNf4, onDense, onOriginal)) {
                Fixtures.randomizeB(adapters, 10);
            }
            backward(m, quantized, upstream);
            backward(m, dense, upstream);
            backward(m, original, upstream);
            Map<String, NDArray> expected = onDense.parameters();
            String key = "base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight";
            onNf4.parameters().forEach((name, param) -> Fixtures.assertClose(Fixtures.toDoubles(
                    expected.get(name).getGradient().toFloatArray()), param.getGradient().toFloatArray(), 1e-5));
            // The comparison can tell: the unquantized weights give clearly different gradients.
            double[] unquantized = Fixtures.toDoubles(onOriginal.parameters().get(key).getGradient().toFloatArray());
            assertThrows(AssertionError.class,
                    () -> Fixtures.assertClose(unquantized, expected.get(key).getGradient().toFloatArray(), 1e-3));
        }
    }

    @Test
    void loraGradientsMatchFloat64FiniteDifferencesOfAnIndependentForward() {
        TinyModel tiny = new TinyModel(7);
        LoraSettings settings = new LoraSettings(3, 6, 0, false, List.of("all"));
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters adapters = LoraAdapters.attach(model, settings, m, 12)) {
            Fixtures.randomizeB(adapters, 13);
            float[] upstream = Fixtures.gaussian(new Random(14), IDS.length * tiny.config.vocabSize());
            float[] logits = backward(m, model, upstream);

            Map<String, ReferenceForward.Lora> lora = new HashMap<>();
            adapters.modules().forEach((path, l) -> lora.put(path, new ReferenceForward.Lora(
                    Fixtures.toDoubles(l.loraA().toFloatArray()), Fixtures.toDoubles(l.loraB().toFloatArray()), 3, settings.scaling())));
            ReferenceForward reference = new ReferenceForward(tiny, lora);
            double[] expectedLogits = Fixtures.flatten(reference.logits(IDS));
            Fixtures.assertClose(expectedLogits, logits, 1e-5);

            String[][] probes = {
                {"model.layers.0.self_attn.q_proj", "A", "17"}, {"model.layers.0.self_attn.k_proj", "B", "5"},
                {"model.layers.1.self_attn.v_proj", "A", "0"}, {"model.layers.0.self_attn.o_proj", "B", "40"},
                {"model.layers.1.mlp.gate_proj", "A", "33"}, {"model.layers.0.mlp.up_proj", "B", "70"},
                {"model.layers.1.mlp.down_proj", "A", "50"}, {"model.layers.1.self_attn.o_proj", "A", "9"},
            };
            for (String[] probe : probes) {
                LoraLinear layer = adapters.modules().get(probe[0]);
                boolean isA = probe[1].equals("A");
                int index = Integer.parseInt(probe[2]);
                double[] values = isA ? lora.get(probe[0]).a() : lora.get(probe[0]).b();
                float[] gradient = (isA ? layer.loraA() : layer.loraB()).getGradient().toFloatArray();
                double h = 1e-4;
                double saved = values[index];
                values[index] = saved + h;
                double plus = loss(reference, upstream);
                values[index] = saved - h;
                double minus = loss(reference, upstream);
                values[index] = saved;
                double finiteDifference = (plus - minus) / (2 * h);
                double scale = 0;
                for (float g : gradient) {
                    scale = Math.max(scale, Math.abs(g));
                }
                assertTrue(Math.abs(finiteDifference) > 1e-3 * scale, probe[0] + " " + probe[1] + ": pick a larger entry");
                assertEquals(finiteDifference, gradient[index], 2e-5 * scale,
                        probe[0] + ".lora_" + probe[1] + "[" + index + "]");
            }
        }
    }

    @Test
    void onlyLoraMatricesReceiveGradientsInAWholeModel() {
        TinyModel tiny = new TinyModel(8);
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m);
                LoraAdapters adapters = LoraAdapters.attach(model, LoraSettings.defaults(2), m, 15)) {
            Fixtures.randomizeB(adapters, 16);
            backward(m, model, Fixtures.gaussian(new Random(17), IDS.length * tiny.config.vocabSize()));
            adapters.parameters().values().forEach(p -> assertTrue(p.getGradient().abs().sum().getFloat() > 0));
            for (int layer = 0; layer < model.numLayers(); layer++) {
                for (String name : model.block(layer).linearNames()) {
                    LinearLayer base = ((LoraLinear) model.block(layer).linear(name)).base();
                    assertFalse(((DenseLinear) base).weight().hasGradient(), name + " of layer " + layer);
                }
            }
            assertFalse(((DenseEmbedding) model.embedTokens()).weight().hasGradient());
            assertFalse(model.norm().hasGradient());
        }
    }

    /** Runs forward and backward of {@code sum(logits * upstream)}; returns the logits. */
    private static float[] backward(NDManager m, CausalLM model, float[] upstream) {
        try (GradientCollector collector = Engine.getInstance().newGradientCollector()) {
            NDArray logits = model.forward(TinyModel.idsArray(m, IDS), null);
            collector.backward(logits.mul(m.create(upstream, logits.getShape())).sum());
            return logits.toFloatArray();
        }
    }

    private static double loss(ReferenceForward reference, float[] upstream) {
        double[] logits = Fixtures.flatten(reference.logits(IDS));
        double total = 0;
        for (int i = 0; i < logits.length; i++) {
            total += logits[i] * upstream[i];
        }
        return total;
    }
}
