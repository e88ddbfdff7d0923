package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.checkpoint.TinyModels;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.ValueSource;

/**
 * PiSSA as PEFT's {@code pissa_init}: {@code A = diag(sqrt(S / s)) V^T}, {@code B = U diag(sqrt(S / s))},
 * {@code W_res = W - s B A}; the base rewritten while loading; PEFT's conversion to a LoRA on the original weights.
 */
class PissaTest {
    private static final LoraSettings SETTINGS = new LoraSettings(4, 8, 0, false, List.of("all"));

    @TempDir
    Path dir;

    @ParameterizedTest(name = "pissa_iter {0}")
    @ValueSource(ints = {-1, 2})
    void residualPlusScaledBAReproducesTheStartingWeightToFloat32Rounding(int iterations) throws Exception {
        int out = 24;
        int in = 40;
        float[] w = Fixtures.gaussian(new Random(1), out * in);
        AdapterInit.Split split = split(new PissaInit(iterations), w, out, in);
        double scaling = SETTINGS.scaling();
        double largest = ExportFixtures.maxAbs(w);
        int r = SETTINGS.rank();
        double worst = 0;
        for (int o = 0; o < out; o++) {
            for (int j = 0; j < in; j++) {
                double ba = 0;
                for (int k = 0; k < r; k++) {
                    ba += (double) split.b()[o * r + k] * split.a()[k * in + j];
                }
                worst = Math.max(worst, Math.abs(split.base()[o * in + j] + scaling * ba - w[o * in + j]));
            }
        }
        assertTrue(worst <= 4 * Math.ulp((float) largest), "max |W_res + s B A - W| = " + worst);
        assertTrue(ExportFixtures.maxAbs(split.a()) > 0.1, "A holds the principal directions");
    }

    @Test
    void startingFactorsAreTheTopSingularTripletsScaledBySqrtOfSOverScaling() throws Exception {
        int out = 20;
        int in = 30;
        Random random = new Random(2);
        double[][] u = TruncatedSvdTest.orthonormalColumns(random, out, 8);
        double[][] v = TruncatedSvdTest.orthonormalColumns(random, in, 8);
        double[] sigma = {9, 7, 5, 4, 2, 1, 0.5, 0.25};
        float[] w = new float[out * in];
        for (int o = 0; o < out; o++) {
            for (int j = 0; j < in; j++) {
                double sum = 0;
                for (int k = 0; k < 8; k++) {
                    sum += u[o][k] * sigma[k] * v[j][k];
                }
                w[o * in + j] = (float) sum;
            }
        }
        AdapterInit.Split split = split(new PissaInit(-1), w, out, in);
        for (int k = 0; k < SETTINGS.rank(); k++) {
            double root = Math.sqrt(sigma[k] / SETTINGS.scaling());
            double sign = Math.signum(split.a()[k * in] * v[0][k]);
            for (int j = 0; j < in; j++) {
                assertEquals(sign * root * v[j][k], split.a()[k * in + j], 1e-5, "A[" + k + "]");
            }
            for (int o = 0; o < out; o++) {
                assertEquals(sign * root * u[o][k], split.b()[o * SETTINGS.rank() + k], 1e-5, "B[:, " + k + "]");
            }
        }
    }

    @Test
    void aPissaStartedModelComputesTheBaseAndReloadsItsTrainedStateBitForBit() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        DecoderConfig config = ModelFamilies.read(base.resolve("config.json"));
        LoraSettings settings = SETTINGS.withInit(AdapterInits.pissa(3));
        float[] plain = ExportFixtures.logits(base);
        float[] trained;
        Path adapter = dir.resolve("adapter");
        try (NDManager m = NDManager.newBaseManager()) {
            Started s = started(base, settings, 7, m);
            float[] first = forward(s.model(), m);
            assertTrue(ExportFixtures.maxDifference(plain, first) <= 1e-5, "W_res + s B A starts as W: "
                    + ExportFixtures.maxDifference(plain, first));
            perturb(s.adapters(), 8);
            trained = forward(s.model(), m);
            s.adapters().save(adapter, base.toString(), BaseFormats.DENSE);
        }
        JsonNode saved = new ObjectMapper().readTree(adapter.resolve("adapter_config.json").toFile());
        assertEquals("pissa_niter_3", saved.get("init_lora_weights").asText());
        assertEquals(7, new ObjectMapper().readTree(adapter.resolve("qlora4j.json").toFile()).get("init_seed").asLong());
        try (NDManager m = NDManager.newBaseManager()) {
            InitialAdapter start = InitialAdapter.of(adapter, config);
            CausalLM model = ModelLoader.builder().optBaseRewrite(start).build().load(base, m);
            LoraAdapters.load(adapter, model, m, start);
            assertArrayEquals(trained, forward(model, m), "the rebuilt base and the trained adapter");
        }
        try (NDManager m = NDManager.newBaseManager()) {
            CausalLM model = ModelLoader.builder().build().load(base, m);
            ModelException e = assertThrows(ModelException.class, () -> LoraAdapters.load(adapter, model, m));
            assertTrue(e.getMessage().contains("init_lora_weights 'pissa_niter_3'") && !e.getMessage().contains("\n"),
                    e.getMessage());
        }
    }

    @ParameterizedTest(name = "{0}")
    @ValueSource(strings = {"LoRA", "DoRA"})
    void convertedAdapterOnTheOriginalWeightsComputesTheTrainedModel(String variant) throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        LoraSettings settings = SETTINGS.withInit(AdapterInits.pissa(-1))
                .withVariant(variant.equals("DoRA") ? Dora.INSTANCE : AdapterVariants.lora());
        float[] trained;
        Path converted = dir.resolve("converted");
        try (NDManager m = NDManager.newBaseManager()) {
            Started s = started(base, settings, 3, m);
            perturb(s.adapters(), 4);
            trained = forward(s.model(), m);
            s.adapters().saveConverted(converted, base.toString(), BaseFormats.DENSE);
        }
        JsonNode config = new ObjectMapper().readTree(converted.resolve("adapter_config.json").toFile());
        assertEquals(8, config.get("r").asInt(), "rank 2r");
        assertEquals(16, config.get("lora_alpha").asInt(), "alpha 2 alpha: the same scaling");
        assertTrue(config.get("init_lora_weights").asBoolean(), "a plain start: loads on the original weights");
        float[] onOriginal = ExportFixtures.logits(base, null, converted);
        assertTrue(ExportFixtures.maxDifference(trained, onOriginal) <= 1e-5 * ExportFixtures.maxAbs(trained) + 1e-6,
                "max difference " + ExportFixtures.maxDifference(trained, onOriginal));
        assertTrue(ExportFixtures.maxDifference(trained, ExportFixtures.logits(base)) > 1e-3,
                "training changed the model");
    }

    private static AdapterInit.Split split(AdapterInit init, float[] w, int out, int in) throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            return init.split("model.layers.0.self_attn.q_proj", w, new long[] {out, in}, SETTINGS.withInit(init),
                    BaseFormats.QLORA, new Random(3), m, new InitReport());
        }
    }

    /** A model loaded through a new start of its settings, and the adapter attached from that start. */
    private record Started(CausalLM model, LoraAdapters adapters) {}

    private static Started started(Path base, LoraSettings settings, long seed, NDManager m) throws Exception {
        InitialAdapter start = InitialAdapter.fresh(settings, ModelFamilies.read(base.resolve("config.json")), seed);
        CausalLM model = ModelLoader.builder().optBaseRewrite(start).build().load(base, m);
        return new Started(model, LoraAdapters.attach(model, settings, m, seed, start));
    }

    /** Moves every A and B off their start, as training would. */
    private static void perturb(LoraAdapters adapters, long seed) {
        Random random = new Random(seed);
        for (NDArray p : adapters.parameters().values()) {
            float[] v = p.toFloatArray();
            for (int i = 0; i < v.length; i++) {
                v[i] += (float) (0.05 * random.nextGaussian());
            }
            p.set(FloatBuffer.wrap(v));
        }
    }

    private static float[] forward(CausalLM model, NDManager m) {
        return model.forward(m.create(ExportFixtures.IDS, new Shape(1, ExportFixtures.IDS.length)), null).toFloatArray();
    }
}
