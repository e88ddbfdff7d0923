package io.qlora4j.trainer;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.GraphScalars;
import io.qlora4j.model.llama.LlamaModel;

/**
 * The causal-LM loss of one micro-batch as transformers computes it: final norm and lm_head, logits
 * at position t scored against the label at t + 1 with a float32 log-softmax, labels {@code -100}
 * ignored, the sum divided by the labelled tokens of the whole accumulated batch.
 */
final class LossHead {
    /** The label that takes no loss (prompt tokens, padding). */
    static final long IGNORE_INDEX = -100;

    private final LlamaModel model;
    private final NDArray labels;
    private final long denominator;

    /** A head for {@code labels [b, s]} (int64) whose loss is divided by {@code denominator}. */
    LossHead(LlamaModel model, NDArray labels, long denominator) {
        this.model = model;
        this.labels = labels;
        this.denominator = denominator;
    }

    /** The scalar loss contribution of the last hidden state {@code [b, s, hidden]}, differentiable. */
    NDArray loss(NDArray hidden) {
        NDArray logits = model.finalNormAndHead(hidden);
        long s = logits.getShape().get(1);
        NDArray predicting = logits.get(":, :{}, :", s - 1);
        if (predicting.getDataType() != DataType.FLOAT32) {
            // toType is not differentiable: promote through an op with a float32 operand instead
            predicting = predicting.add(predicting.getManager().zeros(new Shape(1)));
        }
        NDArray target = labels.get(":, 1:");
        NDArray valid = target.neq(IGNORE_INDEX);
        NDArray safe = target.mul(valid.toType(DataType.INT64, false));
        NDArray logProbs = predicting.logSoftmax(-1).gather(safe.expandDims(-1), -1).squeeze(-1);
        NDArray count = GraphScalars.of(labels.getManager(), denominator);
        return logProbs.mul(valid.toType(DataType.FLOAT32, false)).sum().neg().div(count);
    }
}
