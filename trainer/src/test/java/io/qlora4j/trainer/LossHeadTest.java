package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertInstanceOf;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import ai.djl.training.GradientCollector;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.model.Float16Weight;
import io.qlora4j.model.GraphScalars;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.family.FamilyCheckpoint;
import io.qlora4j.model.family.ReferenceDecoder.Spec;
import io.qlora4j.model.safetensors.DType;
import java.nio.file.Path;
import java.util.Map;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The written-out backward pass of the loss head against autograd's through the recorded formula. */
class LossHeadTest {
    /** Four rows of five: 16 scored tokens, as many as the models' hidden size, so that a chunked head is held. */
    private static final long[] LABELS = {-100, 13, 14, -100, 7, 8, -100, 9, 10, 11, -100, -100, 3, 4, 5, 6, 7, 8, 9,
        -100};
    private static final long DENOMINATOR = 14;

    @TempDir
    Path dir;

    /** transformers' loss recorded op by op: norm, head, shift, log-softmax, masked sum over the denominator. */
    private static NDArray recordedLoss(CausalLM model, NDArray hidden, NDArray labels) {
        NDArray logits = model.finalNormAndHead(hidden);
        long s = logits.getShape().get(1);
        NDArray target = labels.get(":, 1:");
        NDArray valid = target.neq(LossHead.IGNORE_INDEX);
        NDArray safe = target.mul(valid.toType(DataType.INT64, false));
        NDArray picked = logits.get(":, :{}, :", s - 1).logSoftmax(-1).gather(safe.expandDims(-1), -1).squeeze(-1);
        return picked.mul(valid.toType(DataType.FLOAT32, false)).sum().neg()
                .div(GraphScalars.of(labels.getManager(), DENOMINATOR));
    }

    /** {loss, dHidden..., dHead...} by autograd (head == null) or by the head under test. */
    private static float[][] lossAndGradients(CausalLM model, NDArray headWeight, LossHead head, NDArray hidden,
            NDArray labels) {
        hidden.setRequiresGradient(true);
        double loss;
        try (GradientCollector collector = hidden.getManager().getEngine().newGradientCollector()) {
            if (head == null) {
                NDArray recorded = recordedLoss(model, hidden, labels);
                loss = recorded.getFloat();
                collector.backward(recorded);
            } else {
                loss = head.backward(hidden, collector);
            }
        }
        float[] dHead = headWeight == null ? new float[0] : headWeight.getGradient().toFloatArray();
        return new float[][] {{(float) loss}, hidden.getGradient().toFloatArray(), dHead};
    }

    private static void assertSame(float[][] expected, float[][] actual) {
        assertEquals(expected[0][0], actual[0][0], 1e-6 * Math.abs(expected[0][0]), "loss");
        for (int k = 1; k < expected.length; k++) {
            assertEquals(expected[k].length, actual[k].length);
            double scale = 0;
            for (float v : expected[k]) {
                scale = Math.max(scale, Math.abs(v));
            }
            for (int i = 0; i < expected[k].length; i++) {
                assertEquals(expected[k][i], actual[k][i], 1e-5 * scale, "gradient " + k + "[" + i + "]");
            }
        }
    }

    private void assertHeadMatchesAutograd(CausalLM model, NDArray headWeight, boolean trainHead) {
        try (NDManager m = model.manager().newSubManager()) {
            NDArray labels = m.create(LABELS, new Shape(4, 5));
            m.getEngine().setRandomSeed(5);
            NDArray x = m.randomNormal(0, 1, new Shape(4, 5, 16), DataType.FLOAT32);
            float[][] expected = lossAndGradients(model, headWeight, null, x.duplicate(), labels);
            if (headWeight != null) {
                headWeight.getGradient().set(new ai.djl.ndarray.index.NDIndex("..."), 0f);
            }
            int vocab = TinyModel.VOCAB.size();
            // one token per chunk, three per chunk (the last chunk short; 16 tokens, so a 16-bit head is held), all
            // at once
            for (long chunk : new long[] {vocab, 3L * vocab, 1L << 24}) {
                LossHead head = new LossHead(model, labels, DENOMINATOR, trainHead, 1f, chunk);
                float[][] actual = lossAndGradients(model, headWeight, head, x.duplicate(), labels);
                assertSame(expected, actual);
                if (headWeight != null) {
                    headWeight.getGradient().set(new ai.djl.ndarray.index.NDIndex("..."), 0f);
                }
            }
        }
    }

    @Test
    void frozenDenseHeadBackwardMatchesAutograd() throws Exception {
        try (NDManager manager = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().build().load(TinyModel.write(dir, 3), manager)) {
            assertInstanceOf(DenseLinear.class, model.lmHead());
            assertHeadMatchesAutograd(model, null, false);
        }
    }

    @Test
    void frozenSixteenBitHeadBackwardMatchesAutograd() throws Exception {
        try (NDManager manager = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().build().load(TinyModel.write(dir, 4, 16, DType.BF16), manager)) {
            assertInstanceOf(Float16Weight.class, model.lmHead());
            assertHeadMatchesAutograd(model, null, false);
        }
    }

    @Test
    void trainedHeadReceivesTheGradientAutogradGives() throws Exception {
        try (NDManager manager = NDManager.newBaseManager();
                CausalLM model = ModelLoader.builder().build().load(TinyModel.write(dir, 5), manager)) {
            NDArray weight = ((DenseLinear) model.lmHead()).weight();
            weight.setRequiresGradient(true);
            assertHeadMatchesAutograd(model, weight, true);
        }
    }

    /** In-place subtraction at the labels gives every entry of {@code probs - one_hot(label)}, computed in float64. */
    @Test
    void subtractingAtTheLabelsIsSubtractingTheOneHot() {
        int rows = 4;
        int vocab = 7;
        long[] label = {3, 0, 6, 0};
        float[] p = new float[rows * vocab];
        Random random = new Random(8);
        for (int i = 0; i < p.length; i++) {
            p[i] = random.nextFloat();
        }
        try (NDManager m = NDManager.newBaseManager()) {
            // a row index longer than the rows, as for a chunk shorter than the others
            NDArray rowIndex = m.arange(0L, 6L, 1L, DataType.INT64);
            float[] actual = LossHead.minusOneAtLabels(m.create(p, new Shape(rows, vocab)), rowIndex, m.create(label))
                    .toFloatArray();
            for (int r = 0; r < rows; r++) {
                for (int v = 0; v < vocab; v++) {
                    double expected = p[r * vocab + v] - (v == label[r] ? 1.0 : 0.0);
                    assertEquals((float) expected, actual[r * vocab + v], 0f, "[" + r + "," + v + "]");
                }
            }
        }
    }

    /** Gemma 2's final soft-cap, small enough to bend the logits: its derivative is folded into the written backward. */
    @Test
    void softCappedHeadBackwardMatchesAutograd() throws Exception {
        Spec spec = Spec.of("gemma2", 16, 24, 1, 2, 1, 8, TinyModel.VOCAB.size()).with(b -> b.offsetNorm(true)
                .scaledEmbedding(true).activation("gelu_tanh").sandwich(true).scoreScale(0.25).finalCap(2.0));
        FamilyCheckpoint checkpoint = new FamilyCheckpoint(spec, 6);
        Path model = checkpoint.write(dir.resolve("gemma2"), DType.F32, checkpoint.config(false,
                Map.of("query_pre_attn_scalar", 16, "final_logit_softcapping", 2.0, "attn_logit_softcapping", 50.0)));
        try (NDManager manager = NDManager.newBaseManager();
                CausalLM loaded = ModelLoader.builder().build().load(model, manager)) {
            assertEquals(2.0, loaded.config().parts().finalLogitSoftcapping());
            assertHeadMatchesAutograd(loaded, null, false);
        }
    }
}
