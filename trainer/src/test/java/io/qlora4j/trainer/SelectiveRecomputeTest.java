package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.adapters.LoraLinear;
import io.qlora4j.data.Batch;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.family.FamilyCheckpoint;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.family.ReferenceDecoder;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.optim.Gradients;
import io.qlora4j.quant.BlockwiseQuantizer;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.Set;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Selective recompute (base products kept from the forward pass, the rest of each block recomputed, the graph cut
 * at the kept products' inputs) against the full recompute of every family over an NF4 base with LoRA on every
 * projection: the same loss bit for bit, the same gradients to float rounding, whichever projections are kept; and
 * against float64: the directional derivatives of the {@link ReferenceDecoder}'s loss over the NF4 round trip with
 * the adapters merged in.
 */
class SelectiveRecomputeTest {
    private static final long IGNORE = -100;
    private static final int VOCAB = 40;
    private static final int RANK = 4;
    private static final double ALPHA = 8;

    @TempDir
    Path dir;

    private static Batch batch(long[][] ids, int prompt) {
        int rows = ids.length;
        int cols = ids[0].length;
        long[] flat = new long[rows * cols];
        long[] mask = new long[rows * cols];
        long[] positions = new long[rows * cols];
        long[] labels = new long[rows * cols];
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < cols; c++) {
                flat[r * cols + c] = ids[r][c];
                mask[r * cols + c] = 1;
                positions[r * cols + c] = c;
                labels[r * cols + c] = c < prompt ? IGNORE : ids[r][c];
            }
        }
        return new Batch(rows, cols, flat, mask, positions, labels);
    }

    private static final long[] SEQUENCE = {5, 17, 3, 30, 8, 22, 11, 2, 36, 14, 27, 9};
    private static final List<Batch> GROUP = List.of(
            batch(new long[][] {SEQUENCE, {1, 4, 13, 14, 5, 15, 16, 2, 39, 7, 12, 6}}, 3),
            batch(new long[][] {{9, 17, 18, 19, 5, 17, 18, 19, 2, 33, 21, 4}}, 5));

    /** The loss of one step of {@code lora} over {@code group} and the gradients it leaves, which are then zeroed. */
    private static Map<String, float[]> step(TrainStepTest.Nf4Lora lora, List<String> kept, List<Batch> group,
            double[] loss) {
        loss[0] = lora.step().optKeptProducts(kept).build().accumulate(group, 4);
        Map<String, float[]> out = TrainStepTest.gradients(lora.params());
        Gradients.zero(lora.params());
        return out;
    }

    private Path checkpoint(ReferenceDecoder.Spec spec, FamilyCheckpoint checkpoint) throws Exception {
        return checkpoint.write(dir.resolve(spec.modelType()), DType.F32,
                checkpoint.config(true, FamilyCheckpoint.familyKeys(spec)));
    }

    @Test
    void keptProductsGiveTheFullRecomputesLossExactlyAndItsGradientsForEveryFamily() throws Exception {
        for (ReferenceDecoder.Spec spec : FamilyCheckpoint.oneOfEachFamily(2, VOCAB)) {
            Path path = checkpoint(spec, new FamilyCheckpoint(spec, 13));
            try (NDManager manager = NDManager.newBaseManager()) {
                TrainStepTest.Nf4Lora setup = TrainStepTest.Nf4Lora.load(path, manager, DataType.FLOAT32, 0.1);
                List<String> names = setup.model().block(0).linearNames();
                double[] full = new double[1];
                Map<String, float[]> expected = step(setup, List.of(), GROUP, full);
                // all products; the MLP's output product alone; the first attention input's alone (others share its input)
                for (List<String> kept : List.of(names, List.of("mlp.down_proj"), List.of(names.get(0)))) {
                    double[] selective = new double[1];
                    Map<String, float[]> actual = step(setup, kept, GROUP, selective);
                    String what = spec.modelType() + " keeping " + kept;
                    assertEquals(full[0], selective[0], 0.0, what + ": loss");
                    // the same sums added in another order: a few float32 roundings (measured up to 9e-7)
                    TrainStepTest.assertClose(expected, actual, 5e-6);
                }
            }
        }
    }

    @Test
    void gradientsOfKeptProductsMatchFloat64DirectionalDerivatives() throws Exception {
        List<ReferenceDecoder.Spec> families = FamilyCheckpoint.oneOfEachFamily(2, VOCAB).stream()
                .filter(s -> Set.of("llama", "gemma2", "phi3").contains(s.modelType())).toList();
        assertEquals(3, families.size());
        for (ReferenceDecoder.Spec spec : families) {
            FamilyCheckpoint checkpoint = new FamilyCheckpoint(spec, 17);
            Path path = checkpoint(spec, checkpoint);
            Map<String, float[]> rounded = new LinkedHashMap<>(checkpoint.weights);
            BlockwiseQuantizer nf4 = BlockwiseQuantizer.builder().build();
            for (String name : checkpoint.linearWeights()) {
                rounded.put(name, nf4.dequantize(nf4.quantize(checkpoint.weights.get(name), checkpoint.shapes.get(name))));
            }
            try (NDManager manager = NDManager.newBaseManager()) {
                TrainStepTest.Nf4Lora setup = TrainStepTest.Nf4Lora.load(path, manager, DataType.FLOAT32, 0);
                List<Batch> one = List.of(batch(new long[][] {SEQUENCE}, 0));
                Map<String, float[]> analytic = step(setup, setup.model().block(0).linearNames(), one, new double[1]);
                Map<String, float[][]> lora = new LinkedHashMap<>();
                setup.adapters().modules().forEach((module, layer) -> lora.put(module,
                        new float[][] {layer.loraA().toFloatArray(), layer.loraB().toFloatArray()}));
                Random random = new Random(3);
                for (String module : List.of("model.layers.0." + setup.model().block(0).linearNames().get(0),
                        "model.layers.1.self_attn.o_proj", "model.layers.1.mlp.down_proj")) {
                    for (int which = 0; which < 2; which++) {
                        String key = "base_model.model." + module + (which == 0 ? ".lora_A.weight" : ".lora_B.weight");
                        float[] g = analytic.get(key);
                        double[] direction = new double[g.length];
                        double predicted = 0;
                        for (int i = 0; i < g.length; i++) {
                            direction[i] = random.nextGaussian();
                            predicted += direction[i] * g[i];
                        }
                        // central differences at t and 2t, extrapolated (Richardson) to cancel their t^2 error
                        double[] at = new double[2];
                        for (int k = 0; k < 2; k++) {
                            double t = 1e-3 * (k + 1);
                            at[k] = (loss(spec, rounded, lora, setup.adapters().modules(), module, which, direction, t)
                                    - loss(spec, rounded, lora, setup.adapters().modules(), module, which, direction, -t))
                                    / (2 * t);
                        }
                        double numeric = (4 * at[0] - at[1]) / 3;
                        // float32 against float64 through two layers: measured within 4e-5 relative
                        assertEquals(numeric, predicted, 2e-5 + 1e-4 * Math.abs(numeric),
                                spec.modelType() + " " + key);
                    }
                }
            }
        }
    }

    /**
     * The float64 mean cross-entropy of {@link #SEQUENCE} with every adapter merged ({@code W + s B A}) and the
     * {@code which} tensor (0: A, 1: B) of {@code module} moved by {@code t * direction}.
     */
    private static double loss(ReferenceDecoder.Spec spec, Map<String, float[]> base, Map<String, float[][]> lora,
            Map<String, LoraLinear> modules, String module, int which, double[] direction, double t) {
        Map<String, float[]> merged = new LinkedHashMap<>(base);
        double scaling = ALPHA / RANK;
        lora.forEach((name, ab) -> {
            int in = (int) modules.get(name).inFeatures();
            int out = (int) modules.get(name).outFeatures();
            double[] a = new double[ab[0].length];
            double[] b = new double[ab[1].length];
            for (int i = 0; i < a.length; i++) {
                a[i] = ab[0][i] + (name.equals(module) && which == 0 ? t * direction[i] : 0);
            }
            for (int i = 0; i < b.length; i++) {
                b[i] = ab[1][i] + (name.equals(module) && which == 1 ? t * direction[i] : 0);
            }
            float[] w = base.get(name + ".weight");
            float[] m = new float[w.length];
            for (int o = 0; o < out; o++) {
                for (int i = 0; i < in; i++) {
                    double delta = 0;
                    for (int r = 0; r < RANK; r++) {
                        delta += b[o * RANK + r] * a[r * in + i];
                    }
                    m[o * in + i] = (float) (w[o * in + i] + scaling * delta);
                }
            }
            merged.put(name + ".weight", m);
        });
        int[] ids = new int[SEQUENCE.length];
        for (int i = 0; i < ids.length; i++) {
            ids[i] = (int) SEQUENCE[i];
        }
        return new ReferenceDecoder(spec, merged).nll(ids) / (ids.length - 1);
    }

    @Test
    void keptProductsAreRefusedWithoutRecomputeOrWithFullFineTuning() throws Exception {
        ReferenceDecoder.Spec spec = FamilyCheckpoint.oneOfEachFamily(1, VOCAB).get(0);
        Path path = checkpoint(spec, new FamilyCheckpoint(spec, 13));
        try (NDManager manager = NDManager.newBaseManager()) {
            CausalLM model = ModelLoader.builder().build().load(path, manager);
            List<String> kept = List.of("mlp.down_proj");
            assertThrows(IllegalStateException.class,
                    () -> TrainStep.builder(model).optRecompute(false).optKeptProducts(kept).build());
            assertThrows(IllegalStateException.class,
                    () -> TrainStep.builder(model).optTrainEmbeddings(true).optKeptProducts(kept).build());
        }
    }
}
