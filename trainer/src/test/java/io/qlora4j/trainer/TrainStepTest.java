package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.adapters.LoraAdapters;
import io.qlora4j.adapters.LoraSettings;
import io.qlora4j.data.Batch;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.optim.Gradients;
import io.qlora4j.optim.Parameter;
import io.qlora4j.quant.BlockwiseQuantizer;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.function.UnaryOperator;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class TrainStepTest {
    private static final long IGNORE = -100;

    @TempDir
    Path dir;

    /** Right-padded rows as the data pipeline collates them (pad id 0, mask 0, label -100). */
    static Batch batch(long[][] ids, long[][] labels) {
        int rows = ids.length;
        int cols = 0;
        for (long[] row : ids) {
            cols = Math.max(cols, row.length);
        }
        long[] flatIds = new long[rows * cols];
        long[] mask = new long[rows * cols];
        long[] positions = new long[rows * cols];
        long[] flatLabels = new long[rows * cols];
        Arrays.fill(flatLabels, IGNORE);
        for (int r = 0; r < rows; r++) {
            for (int c = 0; c < ids[r].length; c++) {
                flatIds[r * cols + c] = ids[r][c];
                mask[r * cols + c] = 1;
                positions[r * cols + c] = c;
                flatLabels[r * cols + c] = labels[r][c];
            }
        }
        return new Batch(rows, cols, flatIds, mask, positions, flatLabels);
    }

    private static final Batch FIRST = batch(
            new long[][] {{1, 4, 13, 14, 5, 15, 16, 2}, {1, 4, 20, 5, 21, 2}},
            new long[][] {{IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, 15, 16, 2}, {IGNORE, IGNORE, IGNORE, IGNORE, 21, 2}});
    private static final Batch SECOND = batch(
            new long[][] {{1, 9, 17, 18, 19, 5, 17, 18, 19, 2}},
            new long[][] {{IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, 17, 18, 19, 2}});
    private static final Batch BOTH = batch(
            new long[][] {{1, 4, 13, 14, 5, 15, 16, 2}, {1, 4, 20, 5, 21, 2}, {1, 9, 17, 18, 19, 5, 17, 18, 19, 2}},
            new long[][] {{IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, 15, 16, 2}, {IGNORE, IGNORE, IGNORE, IGNORE, 21, 2},
                {IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, IGNORE, 17, 18, 19, 2}});

    private CausalLM load(NDManager manager) throws Exception {
        return ModelLoader.builder().build().load(TinyModel.write(dir.resolve("base"), 7), manager);
    }

    private static TrainStep fullStep(CausalLM model, boolean recompute) {
        return TrainStep.builder(model).optRecompute(recompute).optTrainEmbeddings(true).build();
    }

    static Map<String, float[]> gradients(List<Parameter> params) {
        Map<String, float[]> out = new LinkedHashMap<>();
        for (Parameter p : params) {
            try (NDArray g = p.value().getGradient()) {
                out.put(p.name(), g.toFloatArray());
            }
        }
        return out;
    }

    /** Each element within {@code relative} of its tensor's largest magnitude. */
    static void assertClose(Map<String, float[]> expected, Map<String, float[]> actual, double relative) {
        assertEquals(expected.keySet(), actual.keySet());
        for (String name : expected.keySet()) {
            float[] e = expected.get(name);
            float[] a = actual.get(name);
            double scale = 1e-12;
            for (float v : e) {
                scale = Math.max(scale, Math.abs(v));
            }
            for (int i = 0; i < e.length; i++) {
                assertEquals(e[i], a[i], relative * scale, name + "[" + i + "]");
            }
        }
    }

    /**
     * Full fine-tuning (every weight and the embeddings train): the recompute and the whole graph agree, and the
     * recompute skipping its top layer gives the recompute's bits.
     */
    @Test
    void recomputeAndWholeGraphGiveTheSameGradients() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            CausalLM model = load(manager);
            FullWeights weights = new FullWeights(model, dir.resolve("base"));
            List<Batch> group = List.of(FIRST, SECOND);
            double recomputed = fullStep(model, true).accumulate(group, 3);
            Map<String, float[]> withRecompute = gradients(weights.parameters());
            Gradients.zero(weights.parameters());
            double kept = fullStep(model, false).accumulate(group, 3);
            Map<String, float[]> withGraph = gradients(weights.parameters());
            assertEquals(kept, recomputed, 1e-6);
            assertClose(withGraph, withRecompute, 1e-5);
            Gradients.zero(weights.parameters());
            double skipping = TrainStep.builder(model).optTrainEmbeddings(true).optSkippedLayers(1).build()
                    .accumulate(group, 3);
            Map<String, float[]> withSkipped = gradients(weights.parameters());
            assertEquals(recomputed, skipping, 0.0);
            withRecompute.forEach((name, g) -> assertArrayEquals(g, withSkipped.get(name), name));
            float[] embed = withRecompute.get("model.embed_tokens.weight");
            double rowOfToken13 = 0;
            for (int j = 0; j < 16; j++) {
                rowOfToken13 += Math.abs(embed[13 * 16 + j]);
            }
            assertTrue(rowOfToken13 > 1e-4, "embedding rows of used tokens receive gradient");
        }
    }

    /** Mean cross-entropy over the shifted labelled tokens, in float64 from the inference path's logits. */
    static double referenceLoss(CausalLM model, NDManager manager, List<Batch> group) {
        double sum = 0;
        long count = 0;
        for (Batch b : group) {
            try (NDManager m = manager.newSubManager()) {
                Shape shape = new Shape(b.rows(), b.columns());
                float[] logits = model.forward(m.create(b.inputIds(), shape), m.create(b.attentionMask(), shape))
                        .toFloatArray();
                int vocab = logits.length / (b.rows() * b.columns());
                for (int r = 0; r < b.rows(); r++) {
                    for (int t = 0; t + 1 < b.columns(); t++) {
                        long label = b.labels()[r * b.columns() + t + 1];
                        if (label == IGNORE) {
                            continue;
                        }
                        int base = (r * b.columns() + t) * vocab;
                        double max = Double.NEGATIVE_INFINITY;
                        for (int v = 0; v < vocab; v++) {
                            max = Math.max(max, logits[base + v]);
                        }
                        double z = 0;
                        for (int v = 0; v < vocab; v++) {
                            z += Math.exp(logits[base + v] - max);
                        }
                        sum += max + Math.log(z) - logits[base + (int) label];
                        count++;
                    }
                }
            }
        }
        return sum / count;
    }

    @Test
    void accumulatedMicroBatchesAverageOverAllLabelledTokensLikeOneBatch() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            CausalLM model = load(manager);
            FullWeights weights = new FullWeights(model, dir.resolve("base"));
            // labels that count after the shift: 3 + 2 in FIRST, 4 in SECOND
            assertEquals(5, TrainStep.predictedTokens(FIRST));
            assertEquals(4, TrainStep.predictedTokens(SECOND));
            double expected = referenceLoss(model, manager, List.of(BOTH));
            double accumulated = fullStep(model, true).accumulate(List.of(FIRST, SECOND), 0);
            Map<String, float[]> twoMicroBatches = gradients(weights.parameters());
            Gradients.zero(weights.parameters());
            double single = fullStep(model, true).accumulate(List.of(BOTH), 0);
            Map<String, float[]> oneBatch = gradients(weights.parameters());
            assertEquals(expected, accumulated, 1e-5);
            assertEquals(expected, single, 1e-5);
            assertClose(oneBatch, twoMicroBatches, 1e-5);
        }
    }

    @Test
    void aShortStepSeedsItsMicroBatchesWithTheRunsStrideSoNoTwoStepsShareMasks() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            CausalLM model = load(manager);
            List<Long> seeds = new ArrayList<>();
            TrainStep step = TrainStep.builder(model).optDropoutSeeder(seeds::add).build();
            // a run accumulating 3: step 7 (seed 7) with an epoch's last 2 micro-batches takes 21 and 22, clear of the
            // 3 x s + i of every full step s; the group's own size would give 14 and 15, also drawn by steps 4 and 5
            step.accumulate(List.of(FIRST, SECOND), 7, 3, 1f);
            assertEquals(List.of(21L, 22L), seeds);
            seeds.clear();
            step.accumulate(List.of(FIRST, SECOND), 7, 1f);
            assertEquals(List.of(14L, 15L), seeds);
            assertThrows(IllegalArgumentException.class, () -> step.accumulate(List.of(FIRST, SECOND), 7, 1, 1f));
        }
    }

    @Test
    void gradientsMatchFiniteDifferencesOfTheLoss() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            CausalLM model = load(manager);
            FullWeights weights = new FullWeights(model, dir.resolve("base"));
            List<Batch> group = List.of(FIRST, SECOND);
            fullStep(model, true).accumulate(group, 0);
            Map<String, float[]> analytic = gradients(weights.parameters());
            for (Parameter p : weights.parameters()) {
                if (!p.name().equals("model.embed_tokens.weight") && !p.name().endsWith("0.self_attn.q_proj.weight")
                        && !p.name().endsWith("1.mlp.down_proj.weight")) {
                    continue;
                }
                float[] g = analytic.get(p.name());
                int at = 0;
                for (int i = 1; i < g.length; i++) {
                    at = Math.abs(g[i]) > Math.abs(g[at]) ? i : at;
                }
                long cols = p.value().getShape().get(1);
                NDIndex index = new NDIndex(at / cols, at % cols);
                NDArray view = p.value().stopGradient();
                float original = view.get(index).getFloat();
                double eps = 1e-2;
                view.set(index, (float) (original + eps));
                double plus = referenceLoss(model, manager, group);
                view.set(index, (float) (original - eps));
                double minus = referenceLoss(model, manager, group);
                view.set(index, original);
                double numeric = (plus - minus) / (2 * eps);
                assertEquals(numeric, g[at], 2e-4 + 0.02 * Math.abs(numeric), p.name() + "[" + at + "]");
            }
        }
    }

    @Test
    void stepsLeaveNoArraysBehind() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            CausalLM model = load(manager);
            FullWeights weights = new FullWeights(model, dir.resolve("base"));
            TrainStep step = fullStep(model, true);
            step.accumulate(List.of(FIRST, SECOND), 0);
            Gradients.zero(weights.parameters());
            int afterFirst = manager.getManagedArrays().size();
            for (int i = 1; i < 4; i++) {
                step.accumulate(List.of(FIRST, SECOND), i);
                Gradients.zero(weights.parameters());
            }
            assertEquals(afterFirst, manager.getManagedArrays().size());
            fullStep(model, false).accumulate(List.of(SECOND), 9);
            assertEquals(afterFirst, manager.getManagedArrays().size());
        }
    }

    /**
     * A model with an NF4 base computing in {@code type}, and LoRA r 4, alpha 8 on every projection (B randomized so
     * that A gets gradients).
     */
    record Nf4Lora(CausalLM model, LoraAdapters adapters, List<Parameter> params) {
        static Nf4Lora load(Path base, NDManager manager, DataType type, double dropout) throws Exception {
            // float16 is for GPUs (ComputeTarget refuses it on a CPU); libtorch's CPU kernels run it for a test
            CausalLM model = ModelLoader.builder().optFormat(BaseFormats.QLORA)
                    .optComputeType(type).build().load(base, manager);
            LoraAdapters adapters = LoraAdapters.attach(model, new LoraSettings(4, 8, dropout, false, List.of("all")),
                    manager, 5);
            List<Parameter> params = new ArrayList<>();
            adapters.parameters().forEach((name, value) -> params.add(new Parameter(name, value)));
            manager.getEngine().setRandomSeed(11);
            for (Parameter p : params) {
                // B starts at 0, which would leave A without gradient
                p.value().stopGradient().addi(manager.randomNormal(p.value().getShape()).muli(0.2f));
            }
            adapters.setTraining(true);
            return new Nf4Lora(model, adapters, params);
        }

        TrainStep.Builder step() {
            return TrainStep.builder(model).optDropoutSeeder(adapters::setDropoutSeed);
        }
    }

    /**
     * LoRA over an NF4 base under dropout: the recompute, the whole graph and a selective recompute skipping the top
     * layer agree; another dropout seed draws other masks.
     */
    @Test
    void loraGradientsThroughAnNf4BaseAgreeWithAndWithoutRecomputeUnderDropout() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            Nf4Lora lora = Nf4Lora.load(TinyModel.write(dir.resolve("base"), 7), manager, DataType.FLOAT32, 0.3);
            List<Parameter> params = lora.params();
            List<Batch> group = List.of(FIRST, SECOND);
            double recomputed = lora.step().optRecompute(true).build().accumulate(group, 4);
            Map<String, float[]> withRecompute = gradients(params);
            Gradients.zero(params);
            double kept = lora.step().optRecompute(false).build().accumulate(group, 4);
            Map<String, float[]> withGraph = gradients(params);
            assertEquals(kept, recomputed, 1e-6);
            assertClose(withGraph, withRecompute, 1e-5);
            Gradients.zero(params);
            // a selective recompute skipping the top layer: the bottom one keeps its products (the same gradient sums
            // in another order), the top one runs as the full recompute does
            int arrays = manager.getManagedArrays().size();
            double mixed = lora.step().optKeptProducts(lora.model().block(0).linearNames()).optSkippedLayers(1).build()
                    .accumulate(group, 4);
            assertEquals(recomputed, mixed, 0.0);
            assertClose(withRecompute, gradients(params), 1e-6);
            Gradients.zero(params);
            assertEquals(arrays, manager.getManagedArrays().size());
            lora.step().optRecompute(true).build().accumulate(group, 5);
            float[] otherMasks = gradients(params).get(params.get(0).name());
            float[] sameMasks = withRecompute.get(params.get(0).name());
            assertTrue(!Arrays.equals(sameMasks, otherMasks), "another dropout seed draws other masks");
        }
    }

    /**
     * Blocks that keep their dequantized NF4 weights from the forward pass to their backward (one block, all of them)
     * give the loss and gradients of the step that dequantizes twice, bit for bit, under dropout, and leave no
     * array behind; the whole-graph step (checked against finite differences above) agrees.
     */
    @Test
    void heldBlockWeightsGiveTheBitsOfTheStepWithout() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            Nf4Lora lora = Nf4Lora.load(TinyModel.write(dir.resolve("base"), 7), manager, DataType.FLOAT32, 0.3);
            List<Parameter> params = lora.params();
            List<Batch> group = List.of(FIRST, SECOND);
            CausalLM model = lora.model();
            long block = TrainStep.blockHeldBytes(model.block(0), DataType.FLOAT32);
            long expectedBlock = 0;
            for (String name : model.block(0).linearNames()) {
                expectedBlock += model.block(0).linear(name).outFeatures() * model.block(0).linear(name).inFeatures() * 4;
            }
            assertEquals(expectedBlock, block);
            assertEquals(0, TrainStep.heldBlocks(model, model.numLayers(), block - 1));
            assertEquals(1, TrainStep.heldBlocks(model, model.numLayers(), 2 * block - 1));
            assertEquals(model.numLayers(), TrainStep.heldBlocks(model, model.numLayers(), Long.MAX_VALUE));
            LossAndGradients expected = assertHoldingChangesNoBit(lora, manager, List.of(), block);
            double kept = lora.step().optRecompute(false).build().accumulate(group, 4);
            assertEquals(kept, expected.loss(), 1e-6);
            assertClose(gradients(params), expected.gradients(), 1e-5);
        }
    }

    /**
     * Held weights under a selective recompute keeping every product, where the kept products' input gradients use
     * the held weight: the loss and gradients of the selective step without holding, bit for bit.
     */
    @Test
    void heldBlockWeightsGiveTheSelectiveRecomputesBitsToo() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            Nf4Lora lora = Nf4Lora.load(TinyModel.write(dir.resolve("base"), 8), manager, DataType.FLOAT32, 0.3);
            assertHoldingChangesNoBit(lora, manager, lora.model().block(0).linearNames(),
                    TrainStep.blockHeldBytes(lora.model().block(0), DataType.FLOAT32));
        }
    }

    /**
     * The step keeping {@code kept} products (none: the full recompute) with one block held and with every block held
     * gives the loss and gradients of the same step without holding, bit for bit, and leaves no array behind; returns
     * that loss and those gradients.
     */
    private static LossAndGradients assertHoldingChangesNoBit(Nf4Lora lora, NDManager manager, List<String> kept,
            long block) {
        return assertChangesNoBit(lora, manager, kept, b -> b.optHeldWeightBytes(block),
                b -> b.optHeldWeightBytes(Long.MAX_VALUE));
    }

    /**
     * Skipping the recompute of the top layer, of every layer, and of the top layer with the others' weights held,
     * under dropout over an NF4 base: the loss and gradients of the full recompute, bit for bit, with no array left
     * behind; so is a selective recompute that skips every layer (it keeps no product then).
     */
    @Test
    void skippedLayersGiveTheFullRecomputesBits() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            Nf4Lora lora = Nf4Lora.load(TinyModel.write(dir.resolve("base"), 7), manager, DataType.FLOAT32, 0.3);
            List<String> all = lora.model().block(0).linearNames();
            assertChangesNoBit(lora, manager, List.of(), b -> b.optSkippedLayers(1),
                    b -> b.optSkippedLayers(Integer.MAX_VALUE),
                    b -> b.optSkippedLayers(1).optHeldWeightBytes(Long.MAX_VALUE),
                    b -> b.optKeptProducts(all).optSkippedLayers(lora.model().numLayers()));
        }
    }

    /**
     * Handing glibc's free heap back before each micro-batch (the balanced allocator profile) frees no live array:
     * the selective step keeping every product gives the bits of the same step without it, and leaves no array.
     */
    @Test
    void releasingTheHeapBeforeEachMicroBatchChangesNoBit() throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            Nf4Lora lora = Nf4Lora.load(TinyModel.write(dir.resolve("base"), 8), manager, DataType.FLOAT32, 0.3);
            assertChangesNoBit(lora, manager, lora.model().block(0).linearNames(), b -> b.optReleaseHeap(true));
        }
    }

    /**
     * The step keeping {@code kept} products with each of {@code changes} gives the loss and gradients of the same
     * step without, bit for bit, and leaves no array behind; returns that loss and those gradients.
     */
    @SafeVarargs
    private static LossAndGradients assertChangesNoBit(Nf4Lora lora, NDManager manager, List<String> kept,
            UnaryOperator<TrainStep.Builder>... changes) {
        List<Parameter> params = lora.params();
        List<Batch> group = List.of(FIRST, SECOND);
        double loss = lora.step().optKeptProducts(kept).build().accumulate(group, 4);
        Map<String, float[]> expected = gradients(params);
        Gradients.zero(params);
        int arrays = manager.getManagedArrays().size();
        for (UnaryOperator<TrainStep.Builder> change : changes) {
            double changed = change.apply(lora.step().optKeptProducts(kept)).build().accumulate(group, 4);
            Map<String, float[]> actual = gradients(params);
            Gradients.zero(params);
            assertEquals(loss, changed, 0.0);
            expected.forEach((name, g) -> assertArrayEquals(g, actual.get(name), name));
            assertEquals(arrays, manager.getManagedArrays().size());
        }
        return new LossAndGradients(loss, expected);
    }

    /** One step's loss and its parameters' gradients by name. */
    private record LossAndGradients(double loss, Map<String, float[]> gradients) {}

    @Test
    void float16ComputeGivesTheFloat32LoraGradientsWithinHalfPrecisionUnderALossScale() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 7);
        List<Batch> group = List.of(FIRST, SECOND);
        try (NDManager manager = NDManager.newBaseManager()) {
            Nf4Lora full = Nf4Lora.load(base, manager, DataType.FLOAT32, 0);
            double loss32 = full.step().build().accumulate(group, 4);
            Map<String, float[]> expected = gradients(full.params());
            Nf4Lora half = Nf4Lora.load(base, manager, DataType.FLOAT16, 0);
            float scale = 1024;
            for (boolean recompute : new boolean[] {true, false}) {
                double loss16 = half.step().optRecompute(recompute).build().accumulate(group, 4, scale);
                Map<String, float[]> scaled = gradients(half.params());
                Gradients.zero(half.params());
                Map<String, float[]> unscaled = new LinkedHashMap<>();
                scaled.forEach((name, g) -> {
                    float[] u = new float[g.length];
                    for (int i = 0; i < g.length; i++) {
                        u[i] = g[i] / scale;
                    }
                    unscaled.put(name, u);
                });
                // the loss is not scaled; both follow float32 to about float16's resolution
                assertEquals(loss32, loss16, 5e-3 * loss32);
                assertClose(expected, unscaled, 2e-2);
            }
        }
    }
}
