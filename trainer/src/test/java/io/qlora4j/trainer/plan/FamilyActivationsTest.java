package io.qlora4j.trainer.plan;

import static org.junit.jupiter.api.Assertions.assertEquals;

import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.gemma.GemmaFamily;
import io.qlora4j.model.gemma2.Gemma2Family;
import io.qlora4j.model.llama.LlamaFamily;
import io.qlora4j.model.mistral.MistralFamily;
import io.qlora4j.model.phi3.Phi3Family;
import io.qlora4j.model.qwen2.Qwen2Family;
import io.qlora4j.model.qwen3.Qwen3Family;
import io.qlora4j.trainer.plan.ActivationModel.Activations;
import io.qlora4j.trainer.plan.ActivationModel.Recompute;
import java.util.List;
import org.junit.jupiter.api.Test;

/**
 * Each family's activations against the Llama block of the same sizes, the difference counted by hand from what the
 * family's block adds ({@code TransformerBlock}, {@code SoftCap}, {@code MlpActivation}, {@code LossHead}): hidden 64,
 * MLP 128, 2 layers, 4 heads over 2 key/value heads of 16, vocabulary 1000, float32, no adapter, a batch of 2 x 16
 * tokens (t = 32), without recompute so that every block's kept arrays add up.
 */
class FamilyActivationsTest {
    private static final int H = 64;
    private static final int INTER = 128;
    private static final long T = 2 * 16;
    private static final long Q = 64;
    private static final long KV = 32;
    /** [2, 4 heads, 16, 16] float32 scores. */
    private static final long SCORES = 2 * 4 * 16 * 16 * 4;

    private static Activations of(DecoderConfig.Builder builder) {
        DecoderConfig c = builder.optNumKeyValueHeads(2).optHeadDim(16).build();
        return new ActivationModel(ModelShape.of(c), 4, 0, false, Long.MAX_VALUE).of(Recompute.NONE, 2, 16);
    }

    private static final Activations LLAMA = of(LlamaFamily.builder(H, INTER, 2, 4, 1000));

    @Test
    void mistralsWindowAndQwen2sBiasesKeepNothingMoreThanLlama() {
        // one mask either way (every Mistral layer slides); biases are added in place
        assertEquals(LLAMA, of(MistralFamily.builder(H, INTER, 2, 4, 1000).optSlidingWindow(8)));
        assertEquals(LLAMA, of(Qwen2Family.builder(H, INTER, 2, 4, 1000)));
    }

    @Test
    void gemma2KeepsItsExtraNormsTheirInputsTanhGeluCappedScoresASecondMaskAndCappedLogits() {
        Activations gemma2 = of(Gemma2Family.builder(H, INTER, 2, 4, 1000).optSlidingWindow(8)
                .optSlidingLayers(List.of(true, false)));
        // per block: two more norms' quotient and output [t, h], the o_proj and down_proj outputs they read, three
        // more kept [t, inter] arrays of the tanh GELU (x^2, tanh, 1 + tanh, x / 2 and the product against SiLU's
        // sigmoid and product), the scores' tanh
        long perBlock = 4 * T * H * 4 + 2 * T * H * 4 + 3 * T * INTER * 4 + SCORES;
        assertEquals(LLAMA.graph().total() + 2 * perBlock, gemma2.graph().total());
        // a sliding mask beside the full one: [2, 1, 16, 16] float32
        assertEquals(LLAMA.hiddenStates().total() + 2 * 16 * 16 * 4, gemma2.hiddenStates().total());
        // the loss head's 30 tokens x 1000 logits: three more forward (quotient, tanh, capped) and four for the cap's
        // derivative (quotient, square, negation, 1 - square)
        assertEquals(LLAMA.lossHead().total() + 7 * 30 * 1000 * 4, gemma2.lossHead().total());
    }

    @Test
    void gemmaKeepsTheTanhGelusArraysAndItsEmbeddingScaleNothing() {
        Activations gemma = of(GemmaFamily.builder(H, INTER, 2, 4, 1000));
        assertEquals(LLAMA.graph().total() + 2 * 3 * T * INTER * 4, gemma.graph().total());
        assertEquals(LLAMA.hiddenStates(), gemma.hiddenStates());
    }

    @Test
    void qwen3KeepsItsQueryAndKeyNorms() {
        Activations qwen3 = of(Qwen3Family.builder(H, INTER, 2, 4, 1000));
        // quotient and output of the per-head norms over [t, q] and [t, kv]
        assertEquals(LLAMA.graph().total() + 2 * (2 * T * Q * 4 + 2 * T * KV * 4), qwen3.graph().total());
    }

    @Test
    void phi3sValueSliceKeepsTheWholeFusedQkvOutput() {
        Activations phi3 = of(Phi3Family.builder(H, INTER, 2, 4, 1000));
        // [t, q + 2 kv] kept in place of the value [t, kv]; gate_up's [t, 2 inter] is gate's and up's bytes
        assertEquals(LLAMA.graph().total() + 2 * T * (Q + KV) * 4, phi3.graph().total());
    }
}
