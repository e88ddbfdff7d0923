package io.qlora4j.model.llama;

import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.RopeScaling;
import io.qlora4j.model.family.ReferenceDecoder;
import io.qlora4j.model.family.ReferenceDecoder.Rope;
import io.qlora4j.model.family.ReferenceDecoder.Spec;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Collections;
import java.util.Set;

/**
 * The float64 {@link ReferenceDecoder} of a Llama or Mistral config built in code: its sizes, biases, window and
 * RoPE scaling carried over field by field (these tests build the config themselves, so nothing is parsed).
 */
public final class ReferenceLlama {
    private final ReferenceDecoder reference;

    /** A reference over {@code weights} (Hugging Face names, float32 values as the model holds them). */
    public ReferenceLlama(DecoderConfig c, Map<String, float[]> weights) {
        Set<String> biased = new HashSet<>();
        c.biases().forEach(name -> biased.add(name.substring(name.lastIndexOf('.') + 1)));
        RopeScaling s = c.ropeScaling();
        Rope rope = s == null ? Rope.NONE : new Rope(s.type().jsonName(), s.factor(), s.lowFreqFactor(),
                s.highFreqFactor(), s.type() == RopeScaling.Type.DYNAMIC ? c.maxPositionEmbeddings()
                        : s.originalMaxPositionEmbeddings(), List.of(), List.of(), 1);
        Integer window = c.slidingWindow() == null ? 0 : c.slidingWindow();
        Spec spec = Spec.of(c.modelType(), c.hiddenSize(), c.intermediateSize(), c.numHiddenLayers(),
                c.numAttentionHeads(), c.numKeyValueHeads(), c.headDim(), c.vocabSize())
                .with(b -> b.eps(c.rmsNormEps()).theta(c.ropeTheta()).tied(c.tieWordEmbeddings())
                        .biased(biased.toArray(String[]::new)).rope(rope)
                        .windows(Collections.nCopies(c.numHiddenLayers(), window).toArray(Integer[]::new)));
        this.reference = new ReferenceDecoder(spec, weights);
    }

    /** See {@link ReferenceDecoder#forward}. */
    public double[][] forward(int[] ids, int[] positions, boolean[] real) {
        return reference.forward(ids, positions, real);
    }

    /** The mean cross-entropy of {@code ids[1..]} under the {@code logits} of their prefixes, as eval defines it. */
    public static double meanCrossEntropy(double[][] logits, int[] ids) {
        return ReferenceDecoder.crossEntropy(logits, ids) / (ids.length - 1);
    }
}
