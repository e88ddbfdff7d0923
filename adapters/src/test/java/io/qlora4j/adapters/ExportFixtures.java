package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.checkpoint.TinyModels;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.quant.HalfFloats;
import java.nio.FloatBuffer;
import java.nio.file.Path;
import java.util.List;

/** Export test helpers: adapters for {@code TinyModels}' one-layer checkpoint, and logits of stored models. */
final class ExportFixtures {
    /** Token ids compared (the tiny vocabulary has 50). */
    static final long[] IDS = {1, 5, 17, 33, 42, 8, 23, 49};
    /** The adapters' settings: r 4, alpha 8 (scaling 2), every projection. */
    static final LoraSettings SETTINGS = new LoraSettings(4, 8, 0, false, List.of("all"));

    private ExportFixtures() {}

    /**
     * Saves a trained-looking adapter for {@code base} into {@code dir}: A as attached from {@code seed}, B random,
     * every value representable in float16 (a start that rewrites the base rewrites it while loading); with
     * {@code trainedOn} set, attached to the base in that format and
     * recording it as the trainer does (null: the base as stored, recorded as dense).
     */
    static Path adapter(Path base, Path dir, BaseFormat trainedOn, long seed) throws Exception {
        return adapter(base, dir, trainedOn, seed, SETTINGS);
    }

    /** {@link #adapter(Path, Path, BaseFormat, long)} with other settings (another variant, say). */
    static Path adapter(Path base, Path dir, BaseFormat trainedOn, long seed, LoraSettings settings) throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            InitialAdapter start = settings.init().rewritesBase() ? InitialAdapter.fresh(settings,
                    ModelFamilies.read(base.resolve("config.json")), seed) : null;
            CausalLM model = loader(trainedOn, start).load(base, m);
            LoraAdapters adapters = LoraAdapters.attach(model, settings, m, seed, start);
            Fixtures.randomizeB(adapters, seed + 1);
            for (NDArray p : adapters.parameters().values()) {
                p.set(FloatBuffer.wrap(representableInF16(p.toFloatArray())));
            }
            adapters.save(dir, "tiny", BaseFormats.forModel(base, trainedOn == null ? BaseFormats.DENSE : trainedOn));
        }
        return dir;
    }

    /** The logits of {@link #IDS} through {@code base} (4-bit in {@code format} when set) with {@code adapter} attached. */
    static float[] logits(Path base, BaseFormat format, Path adapter) throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            InitialAdapter start = InitialAdapter.of(adapter, ModelFamilies.read(base.resolve("config.json")));
            CausalLM model = loader(format, start).load(base, m);
            LoraAdapters.load(adapter, model, m, start);
            return forward(model, m);
        }
    }

    /** The logits of {@link #IDS} through the model stored in {@code dir}, loaded as it is. */
    static float[] logits(Path dir) throws Exception {
        try (NDManager m = NDManager.newBaseManager()) {
            return forward(ModelLoader.builder().build().load(dir, m), m);
        }
    }

    /** {@code [out, in]} of a projection of the tiny model (four heads of 16, so k and v are square too). */
    static long[] projectionShape(String linearName) {
        return switch (TargetModules.shortName(linearName)) {
            case "gate_proj", "up_proj" -> new long[] {TinyModels.INTER, TinyModels.HIDDEN};
            case "down_proj" -> new long[] {TinyModels.HIDDEN, TinyModels.INTER};
            default -> new long[] {TinyModels.HIDDEN, TinyModels.HIDDEN};
        };
    }

    /** {@code max |a - b|}. */
    static double maxDifference(float[] a, float[] b) {
        assertEquals(a.length, b.length);
        double worst = 0;
        for (int i = 0; i < a.length; i++) {
            worst = Math.max(worst, Math.abs((double) a[i] - b[i]));
        }
        return worst;
    }

    /** {@code max |a|}. */
    static double maxAbs(float[] a) {
        double m = 0;
        for (float v : a) {
            m = Math.max(m, Math.abs(v));
        }
        return m;
    }

    /** A stored tensor as float32. */
    static float[] tensor(Path dir, String name) throws Exception {
        try (SafetensorsReader r = SafetensorsReader.open(dir)) {
            return r.floats(name);
        }
    }

    /** The values rounded to the nearest float16, so F16 and F32 files hold the same numbers. */
    static float[] representableInF16(float[] v) {
        float[] out = new float[v.length];
        for (int i = 0; i < v.length; i++) {
            out[i] = HalfFloats.f16ToFloat(HalfFloats.floatToF16(v[i]));
        }
        return out;
    }

    private static ModelLoader loader(BaseFormat format, InitialAdapter start) {
        return ModelLoader.builder().optFormat(format).optBaseRewrite(start).build();
    }

    private static float[] forward(CausalLM model, NDManager m) {
        return model.forward(m.create(IDS, new Shape(1, IDS.length)), null).toFloatArray();
    }
}
