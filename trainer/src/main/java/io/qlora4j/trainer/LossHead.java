package io.qlora4j.trainer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDArrays;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.index.NDIndex;
import ai.djl.ndarray.types.DataType;
import ai.djl.training.GradientCollector;
import io.qlora4j.model.LinearLayer;
import io.qlora4j.model.WeightHold;
import io.qlora4j.model.decoder.SoftCap;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.trainer.plan.ActivationModel;

/**
 * The causal-LM loss of one micro-batch as transformers computes it: final norm and lm_head, logits
 * at position t scored against the label at t + 1 with a float32 log-softmax, labels {@code -100}
 * ignored, the sum divided by the labelled tokens of the whole accumulated batch.
 *
 * <p>Its backward pass is written out rather than recorded: the logits' gradient is
 * {@code (softmax - one_hot(label)) * valid / denominator}, and lm_head's {@link LinearLayer#inputGradient}
 * carries it to the normed hidden state, one chunk of tokens at a time. A recorded head would keep the
 * logits, the log-probabilities and the head's (widened) weight until backward: the largest arrays of a
 * QLoRA step. Only the final norm is recorded. When lm_head itself is trained (full fine-tuning), its
 * product is recorded too, so that its weight receives a gradient. A final logit soft-cap (Gemma 2) is applied to
 * each chunk's logits and its derivative {@code 1 - (capped / cap)^2} folded into their gradient.
 *
 * <p>The one-hot is never formed: 1 is subtracted at each row's label in place. When the tokens take more than
 * one chunk and at least as many tokens as lm_head has input features, lm_head is {@linkplain LinearLayer#hold
 * held} for the whole head, so that a 16-bit head is widened once instead of for every product (twice per chunk):
 * its float32 copy is then no larger than the micro-batch's whole logits, which transformers would hold. Otherwise
 * (one chunk, or a wide head over few tokens, as a 1.1B model over 128 tokens) it is widened per product, a row
 * chunk at a time, keeping a whole float32 copy out of the step's peak.
 *
 * <p>Every row's log-probabilities and gradient are computed from that row alone, and the loss is one float32 sum
 * over the concatenated per-row terms, so the chunks change the bits only where the kernels of a product do for a
 * different number of rows (a one-row product takes a matrix-vector kernel; tiny products block differently). On
 * the ~100M step, chunks of 32, 65 and 524 rows gave the same gradient bits. The hold and the in-place subtraction
 * do not change a bit.
 */
final class LossHead {
    /** The label that takes no loss (prompt tokens, padding). */
    static final long IGNORE_INDEX = -100;

    private final CausalLM model;
    private final NDArray labels;
    private final long denominator;
    private final boolean trainHead;
    private final float gradientScale;
    private final long chunkLogits;

    /**
     * A head for {@code labels [b, s]} (int64) whose loss is divided by {@code denominator}; {@code trainHead}
     * when lm_head's weight is a trained parameter.
     */
    LossHead(CausalLM model, NDArray labels, long denominator, boolean trainHead) {
        this(model, labels, denominator, trainHead, 1f, ActivationModel.CHUNK_LOGITS);
    }

    /**
     * A head whose backward pass multiplies every gradient by {@code gradientScale} (float16's loss scale; the
     * returned loss is not scaled), computing {@code chunkLogits} logits at once (at least one token's).
     */
    LossHead(CausalLM model, NDArray labels, long denominator, boolean trainHead, float gradientScale,
            long chunkLogits) {
        this.model = model;
        this.labels = labels;
        this.denominator = denominator;
        this.trainHead = trainHead;
        this.gradientScale = gradientScale;
        this.chunkLogits = chunkLogits;
    }

    /** The loss contribution of the last hidden state {@code [b, s, hidden]}, without gradients. */
    double loss(NDArray hidden) {
        return run(hidden, null);
    }

    /**
     * The loss contribution of {@code hidden [b, s, hidden]}, backpropagated through {@code collector} into
     * hidden (which must record a graph) and, when it is trained, into lm_head.
     */
    double backward(NDArray hidden, GradientCollector collector) {
        return run(hidden, collector);
    }

    private double run(NDArray hidden, GradientCollector collector) {
        long s = hidden.getShape().get(1);
        long tokens = hidden.getShape().get(0) * (s - 1);
        if (tokens == 0) {
            return 0;
        }
        LinearLayer head = model.lmHead();
        long chunk = ActivationModel.chunkTokens(chunkLogits, head.outFeatures());
        // several chunks would widen a 16-bit head for each of their products: widen it once for all of them
        boolean hold = ActivationModel.holdsHead(tokens, chunk, head.inFeatures());
        try (WeightHold held = hold ? head.hold(hidden.getDataType()) : WeightHold.NONE;
                NDScope scope = new NDScope()) {
            scope.suppressNotUsedWarning();
            NDArray normed = model.finalNorm(hidden.get(":, :{}, :", s - 1)).reshape(tokens, -1);
            NDArray target = labels.get(":, 1:").reshape(tokens);
            NDArray valid = target.neq(IGNORE_INDEX);
            NDArray safe = target.mul(valid.toType(DataType.INT64, false));
            NDArray weight = valid.toType(DataType.FLOAT32, false).div((float) denominator);
            NDArray gradWeight = gradientScale == 1f ? weight : weight.mul(gradientScale);
            // a frozen head reads a detached input: its product records nothing; a trained head's is recorded once
            NDArray input = trainHead ? normed : normed.stopGradient();
            Double softcap = model.config().parts().finalLogitSoftcapping();
            NDArray rowIndex = hidden.getManager().arange(0L, Math.min(tokens, chunk), 1L, DataType.INT64);
            NDList terms = new NDList();
            NDList upstream = new NDList();
            for (long t = 0; t < tokens; t += chunk) {
                try (NDScope chunkScope = new NDScope()) {
                    NDIndex rows = new NDIndex("{}:{}", t, Math.min(tokens, t + chunk));
                    NDArray logits = head.forward(input.get(rows));
                    NDArray scored = logits.toType(DataType.FLOAT32, false).stopGradient();
                    if (softcap != null) {
                        scored = SoftCap.apply(scored, softcap);
                    }
                    NDArray logProbs = scored.logSoftmax(-1);
                    NDArray label = safe.get(rows);
                    NDArray term = logProbs.gather(label.expandDims(-1), -1).squeeze(-1).mul(weight.get(rows));
                    NDScope.unregister(term);
                    terms.add(term);
                    if (collector != null) {
                        NDArray dLogits = minusOneAtLabels(logProbs.exp(), rowIndex, label)
                                .muli(gradWeight.get(rows).expandDims(-1));
                        if (softcap != null) {
                            dLogits = dLogits.muli(SoftCap.derivative(scored, softcap));
                        }
                        // a trained head backpropagates through its recorded product; a frozen one by hand
                        NDArray part = trainHead ? logits.mul(dLogits).sum() : head.inputGradient(dLogits);
                        NDScope.unregister(part);
                        upstream.add(part);
                    }
                }
            }
            terms.forEach(NDScope::register);
            double loss = -NDArrays.concat(terms).sum().getFloat();
            if (collector != null) {
                NDArray surrogate = trainHead ? NDArrays.stack(upstream).sum()
                        : normed.mul(NDArrays.concat(upstream)).sum();
                upstream.forEach(NDScope::register);
                collector.backward(surrogate);
            }
            return loss;
        }
    }

    /**
     * {@code probs - one_hot(label)}, in place: 1 subtracted from each row's entry at its label, which is what
     * subtracting the float32 one-hot does to every entry (x - 0 is x) without the {@code [rows, vocab]} one-hot.
     * {@code rowIndex} counts at least as many rows as {@code probs} has.
     */
    static NDArray minusOneAtLabels(NDArray probs, NDArray rowIndex, NDArray label) {
        long rows = probs.getShape().get(0);
        NDIndex at = new NDIndex("{}, {}", rows == rowIndex.size() ? rowIndex : rowIndex.get("{}:{}", 0, rows), label);
        probs.set(at, probs.get(at).subi(1f));
        return probs;
    }
}
