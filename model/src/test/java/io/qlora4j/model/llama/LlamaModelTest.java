package io.qlora4j.model.llama;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertSame;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.DenseEmbedding;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.KvCache;
import io.qlora4j.model.decoder.RopeScaling;
import io.qlora4j.model.family.LogitAsserts;
import io.qlora4j.model.mistral.MistralFamily;
import java.util.Arrays;
import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * The DJL model against the float64 {@link ReferenceLlama}. Metric: for each compared row set,
 * {@code max |djl - ref| <= 1e-4 * max |ref|} (an absolute tolerance scaled to the logits' magnitude).
 */
class LlamaModelTest {

    private static DecoderConfig.Builder base(int hidden, int heads) {
        return LlamaFamily.builder(hidden, 2 * hidden - 8, 2, heads, 37).optRmsNormEps(1e-5);
    }

    private static DecoderConfig.Builder mistral(int hidden, int heads) {
        return MistralFamily.builder(hidden, 2 * hidden - 8, 2, heads, 37).optRmsNormEps(1e-5);
    }

    @Test
    void groupedQueryAttentionHeads4Kv2MatchesReference() {
        assertMatchesReference(base(32, 4).optNumKeyValueHeads(2).build(), 0, 9);
    }

    @Test
    void oddHeadCountsWithOneOrThreeKvHeadsMatchReference() {
        assertMatchesReference(base(24, 3).optNumKeyValueHeads(1).build(), 0, 7);
        assertMatchesReference(base(24, 3).optNumKeyValueHeads(3).build(), 0, 7);
    }

    @Test
    void headDimOtherThanHiddenOverHeadsMatchesReference() {
        assertMatchesReference(base(24, 4).optNumKeyValueHeads(2).optHeadDim(10).build(), 0, 8);
    }

    @Test
    void tiedEmbeddingsShareOneArrayAndMatchReference() {
        DecoderConfig config = base(16, 2).optTieWordEmbeddings(true).build();
        TinyLlama tiny = new TinyLlama(config, 3);
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m)) {
            assertSame(((DenseEmbedding) model.embedTokens()).weight(), ((DenseLinear) model.lmHead()).weight());
        }
        assertMatchesReference(config, 0, 6);
    }

    @Test
    void attentionAndMlpBiasMatchReference() {
        assertMatchesReference(base(16, 4).optNumKeyValueHeads(2).optBiases(LlamaFamily.biases(true, true)).build(), 0, 6);
    }

    @Test
    void llama3ScalingAtLargePositionsMatchesReference() {
        // head_dim 16, theta 1e4: wavelengths 6.3, 19.9 kept (< 256/8), 62.8, 199 blended, >= 628 divided by 8.
        RopeScaling llama3 = RopeScaling.llama3(8, 1, 8, 256);
        assertScalingMatters(base(32, 2).optRopeScaling(llama3).build(), 1000);
    }

    @Test
    void linearScalingMatchesReference() {
        assertScalingMatters(base(32, 4).optNumKeyValueHeads(2).optRopeScaling(RopeScaling.linear(4)).build(), 50);
    }

    @Test
    void dynamicScalingBeyondMaxPositionEmbeddingsMatchesReference() {
        DecoderConfig config = base(32, 4).optMaxPositionEmbeddings(8).optRopeScaling(RopeScaling.dynamic(3)).build();
        assertScalingMatters(config, 0); // 12 tokens > 8 positions: theta is rescaled for length 12
    }

    @Test
    void slidingWindowHidesKeysOutsideTheWindow() {
        DecoderConfig config = mistral(16, 2).optSlidingWindow(3).build();
        assertMatchesReference(config, 0, 10);
        DecoderConfig full = mistral(16, 2).build();
        assertTrue(maxDiff(referenceLogits(config, ids(10, 5), 0), referenceLogits(full, ids(10, 5), 0), 3, 10) > 1e-2,
                "the window must change the logits of late tokens");
    }

    @Test
    void rightPaddingLeavesLogitsOfRealTokensUnchanged() {
        DecoderConfig config = base(16, 4).optNumKeyValueHeads(2).build();
        TinyLlama tiny = new TinyLlama(config, 11);
        int[] longRow = ids(7, 1);
        int[] shortRow = Arrays.copyOf(ids(4, 2), 7); // 3 trailing pads with id 0
        long[] mask = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0};
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m)) {
            float[] logits = model.forward(idsArray(m, longRow, shortRow), m.create(mask, new Shape(2, 7))).toFloatArray();
            int vocab = config.vocabSize();
            LogitAsserts.assertClose(tiny.reference().forward(longRow, range(0, 7), allReal(7)), slice(logits, 0, 7, vocab), 0, 7);
            int[] real = Arrays.copyOf(shortRow, 4);
            LogitAsserts.assertClose(tiny.reference().forward(real, range(0, 4), allReal(4)), slice(logits, 1, 7, vocab), 0, 4);
        }
    }

    @Test
    void leftPaddingWithMaskAndCountedPositionsMatchesTheUnpaddedRun() {
        DecoderConfig config = base(16, 4).optNumKeyValueHeads(2).build();
        TinyLlama tiny = new TinyLlama(config, 12);
        int[] real = ids(4, 3);
        int[] padded = {0, 0, 0, real[0], real[1], real[2], real[3]};
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m)) {
            NDArray mask = m.create(new long[] {0, 0, 0, 1, 1, 1, 1}, new Shape(1, 7));
            NDArray positions = m.create(new long[] {1, 1, 1, 0, 1, 2, 3}, new Shape(1, 7));
            NDArray ids = idsArray(m, padded);
            float[] logits = model.finalNormAndHead(model.hiddenStates(ids, model.context(positions, 0, mask), null)).toFloatArray();
            double[][] expected = tiny.reference().forward(real, range(0, 4), allReal(4));
            float[] realRows = Arrays.copyOfRange(logits, 3 * config.vocabSize(), 7 * config.vocabSize());
            LogitAsserts.assertClose(expected, realRows, 0, 4);
            float[] unmasked = model.finalNormAndHead(model.hiddenStates(ids, model.context(positions, 0, null), null)).toFloatArray();
            double[][] wrong = new double[4][];
            for (int i = 0; i < 4; i++) {
                wrong[i] = new double[config.vocabSize()];
                for (int v = 0; v < wrong[i].length; v++) {
                    wrong[i][v] = unmasked[(3 + i) * config.vocabSize() + v];
                }
            }
            assertTrue(maxDiff(expected, wrong, 1, 4) > 1e-2, "without the mask the pads must leak into real tokens");
        }
    }

    @Test
    void packedExamplesSeeOnlyThemselves() {
        DecoderConfig config = base(16, 4).optNumKeyValueHeads(2).build();
        TinyLlama tiny = new TinyLlama(config, 13);
        int[] first = ids(3, 5);
        int[] second = ids(4, 9);
        int[] packed = {first[0], first[1], first[2], second[0], second[1], second[2], second[3]};
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m)) {
            NDArray segments = m.create(new long[] {1, 1, 1, 2, 2, 2, 2}, new Shape(1, 7));
            NDArray positions = m.create(new long[] {0, 1, 2, 0, 1, 2, 3}, new Shape(1, 7));
            float[] logits = model.finalNormAndHead(
                    model.hiddenStates(idsArray(m, packed), model.context(positions, 0, segments), null)).toFloatArray();
            int v = config.vocabSize();
            LogitAsserts.assertClose(tiny.reference().forward(first, range(0, 3), allReal(3)), Arrays.copyOfRange(logits, 0, 3 * v), 0, 3);
            LogitAsserts.assertClose(tiny.reference().forward(second, range(0, 4), allReal(4)),
                    Arrays.copyOfRange(logits, 3 * v, 7 * v), 0, 4);
        }
    }

    @Test
    void kvCacheStepsReproduceTheFullForward() {
        DecoderConfig config = base(32, 4).optNumKeyValueHeads(2).build();
        TinyLlama tiny = new TinyLlama(config, 13);
        int[] tokens = ids(8, 4);
        int vocab = config.vocabSize();
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m); KvCache cache = model.newCache(m)) {
            float[] full = model.forward(idsArray(m, tokens), null).toFloatArray();
            float[] prefill = model.forward(idsArray(m, Arrays.copyOf(tokens, 5)), null, cache).toFloatArray();
            LogitAsserts.assertArrayClose(Arrays.copyOf(full, 5 * vocab), prefill);
            for (int i = 5; i < 8; i++) {
                float[] step = model.forward(idsArray(m, new int[] {tokens[i]}), null, cache).toFloatArray();
                assertEquals(i + 1, cache.length());
                LogitAsserts.assertArrayClose(Arrays.copyOfRange(full, i * vocab, (i + 1) * vocab), step);
            }
        }
    }

    @Test
    void repeatedForwardKeepsTheManagersArrayCountFlat() {
        DecoderConfig config = base(16, 4).optNumKeyValueHeads(2).build();
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = new TinyLlama(config, 14).build(m)) {
            NDArray ids = idsArray(m, ids(6, 6));
            NDArray mask = m.ones(new Shape(1, 6));
            int before = m.getManagedArrays().size();
            for (int i = 0; i < 20; i++) {
                model.forward(ids, mask).close();
            }
            assertEquals(before, m.getManagedArrays().size());
        }
    }

    /** Runs the DJL model at positions {@code start ..} and checks it against the reference. */
    private static void assertMatchesReference(DecoderConfig config, int start, int length) {
        TinyLlama tiny = new TinyLlama(config, 7);
        int[] tokens = ids(length, 9);
        try (NDManager m = NDManager.newBaseManager(); CausalLM model = tiny.build(m)) {
            NDArray positions = m.create(toLong(range(start, length)), new Shape(1, length));
            float[] logits = model.finalNormAndHead(
                    model.hiddenStates(idsArray(m, tokens), model.context(positions, 0, null), null)).toFloatArray();
            LogitAsserts.assertClose(tiny.reference().forward(tokens, range(start, length), allReal(length)), logits, 0, length);
        }
    }

    /** Checks a scaled-RoPE config against the reference and that the scaling visibly changes the logits. */
    private static void assertScalingMatters(DecoderConfig config, int start) {
        assertMatchesReference(config, start, 12);
        DecoderConfig plain = LlamaFamily.builder(config.hiddenSize(), config.intermediateSize(),
                config.numHiddenLayers(), config.numAttentionHeads(), config.vocabSize())
                .optNumKeyValueHeads(config.numKeyValueHeads()).optHeadDim(config.headDim())
                .optRmsNormEps(config.rmsNormEps()).optRopeTheta(config.ropeTheta())
                .optMaxPositionEmbeddings(config.maxPositionEmbeddings()).build();
        double diff = maxDiff(referenceLogits(config, ids(12, 9), start), referenceLogits(plain, ids(12, 9), start), 0, 12);
        assertTrue(diff > 1e-2, "scaling must change the logits, max diff " + diff);
    }

    private static double[][] referenceLogits(DecoderConfig config, int[] tokens, int start) {
        return new TinyLlama(config, 7).reference().forward(tokens, range(start, tokens.length), allReal(tokens.length));
    }



    private static double maxDiff(double[][] a, double[][] b, int from, int to) {
        double diff = 0;
        for (int i = from; i < to; i++) {
            for (int v = 0; v < a[i].length; v++) {
                diff = Math.max(diff, Math.abs(a[i][v] - b[i][v]));
            }
        }
        return diff;
    }

    private static float[] slice(float[] logits, int row, int seq, int vocab) {
        return Arrays.copyOfRange(logits, row * seq * vocab, (row + 1) * seq * vocab);
    }

    static int[] ids(int n, long seed) {
        Random r = new Random(seed);
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = 1 + r.nextInt(36);
        }
        return out;
    }

    static NDArray idsArray(NDManager m, int[]... rows) {
        long[] flat = new long[rows.length * rows[0].length];
        for (int r = 0; r < rows.length; r++) {
            for (int i = 0; i < rows[r].length; i++) {
                flat[r * rows[0].length + i] = rows[r][i];
            }
        }
        return m.create(flat, new Shape(rows.length, rows[0].length));
    }

    private static int[] range(int start, int n) {
        int[] out = new int[n];
        for (int i = 0; i < n; i++) {
            out[i] = start + i;
        }
        return out;
    }

    private static long[] toLong(int[] v) {
        return Arrays.stream(v).asLongStream().toArray();
    }

    private static boolean[] allReal(int n) {
        boolean[] out = new boolean[n];
        Arrays.fill(out, true);
        return out;
    }
}
