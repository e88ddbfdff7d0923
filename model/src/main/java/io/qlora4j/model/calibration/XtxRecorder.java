package io.qlora4j.model.calibration;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.NDScope;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.model.LinearLayer;

/**
 * A linear layer that passes through to another and records the statistic AQLM quantizes against: the sum of
 * {@code x x^T} over every input token, in float64 (as the AQLM repository's {@code AQEngine.add_batch}), and
 * the token count, whose ratio is the mean {@code X^T X}.
 */
final class XtxRecorder implements LinearLayer {
    private final LinearLayer inner;
    private final NDManager manager;
    private NDArray sum;
    private long tokens;

    /** Records the inputs of {@code inner}, keeping the statistic in {@code manager}. */
    XtxRecorder(LinearLayer inner, NDManager manager) {
        this.inner = inner;
        this.manager = manager;
    }

    @Override
    public NDArray forward(NDArray x) {
        try (NDArray rows = x.reshape(-1, inFeatures()).toType(DataType.FLOAT64, false);
                NDArray product = rows.transpose().matMul(rows)) {
            if (sum == null) {
                // the block's forward runs in a scope that closes its temporaries: the sum lives on outside it
                sum = product.duplicate();
                NDScope.unregister(sum);
                sum.attach(manager);
            } else {
                sum.addi(product);
            }
            tokens += rows.getShape().get(0);
        }
        return inner.forward(x);
    }

    /** The mean of {@code x x^T} over the tokens seen, {@code [in, in]} float64; the caller closes it. */
    NDArray meanXtx() {
        return sum.div(tokens);
    }

    /** The layer recorded through. */
    LinearLayer inner() {
        return inner;
    }

    @Override
    public NDArray inputGradient(NDArray gradOutput) {
        return inner.inputGradient(gradOutput);
    }

    @Override
    public long inFeatures() {
        return inner.inFeatures();
    }

    @Override
    public long outFeatures() {
        return inner.outFeatures();
    }

    @Override
    public long bytes() {
        return inner.bytes();
    }

    /** Frees the statistic (the inner layer is the caller's). */
    @Override
    public void close() {
        if (sum != null) {
            sum.close();
        }
    }
}
