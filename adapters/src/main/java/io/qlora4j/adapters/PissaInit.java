package io.qlora4j.adapters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.format.BaseFormat;
import java.util.Objects;
import java.util.Random;

/**
 * PiSSA (principal singular values and vectors adaptation) as PEFT's {@code LoraLayer.pissa_init} computes it, in
 * float32: with {@code W ~ U diag(S) V^T} the top {@code r} singular triplets and {@code S' = S / scaling},
 * {@code A = diag(sqrt(S')) V^T}, {@code B = U diag(sqrt(S'))}, and the base becomes the residual
 * {@code W_res = W - scaling * B @ A}, so base + adapter start as W (to float32 rounding). {@code init_lora_weights:
 * "pissa"} takes the exact SVD, {@code "pissa_niter_K"} torch's randomised {@code svd_lowrank} with K power
 * iterations ({@link TruncatedSvd}). Over a quantized base the residual is what gets quantized, as PEFT recommends
 * (so {@code Q(W_res) + s B A} is not {@code W}, and not {@code Q(W)} either).
 */
final class PissaInit extends AdapterInit {
    /** Power iterations of the randomised SVD; -1 for the exact SVD. */
    private final int iterations;

    PissaInit(int iterations) {
        if (iterations < -1) {
            throw new IllegalArgumentException("pissa_iter must be -1 (exact SVD) or at least 0, got " + iterations);
        }
        this.iterations = iterations;
    }

    @Override
    public Object peftValue() {
        return iterations < 0 ? "pissa" : "pissa_niter_" + iterations;
    }

    @Override
    public String describe() {
        return iterations < 0 ? "PiSSA (exact SVD)"
                : "PiSSA (randomised SVD, " + iterations + (iterations == 1 ? " iteration)" : " iterations)");
    }

    @Override
    public boolean rewritesBase() {
        return true;
    }

    /** The randomised SVD draws a random sketch; the exact one does not. */
    @Override
    public boolean rerunsDiffer() {
        return iterations >= 0;
    }

    @Override
    Split split(String module, float[] w, long[] shape, LoraSettings settings, BaseFormat format, Random random,
            NDManager manager, InitReport report) {
        int out = Math.toIntExact(shape[0]);
        int in = Math.toIntExact(shape[1]);
        int r = settings.rank();
        float scaling = (float) settings.scaling();
        try (NDManager m = manager.newSubManager()) {
            NDArray weight = m.create(w, new Shape(out, in));
            TruncatedSvd svd = iterations < 0 ? TruncatedSvd.exact(weight, r)
                    : TruncatedSvd.randomized(weight, r, iterations, random);
            float[] a = new float[r * in];
            float[] b = new float[out * r];
            for (int i = 0; i < r; i++) {
                float root = (float) Math.sqrt((float) svd.s()[i] / scaling);
                for (int j = 0; j < in; j++) {
                    a[i * in + j] = root * (float) svd.v()[j][i];
                }
                for (int o = 0; o < out; o++) {
                    b[o * r + i] = (float) svd.u()[o][i] * root;
                }
            }
            NDArray update = m.create(b, new Shape(out, r)).matMul(m.create(a, new Shape(r, in))).muli(scaling);
            return new Split(weight.sub(update).toFloatArray(), a, b);
        }
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof PissaInit p && p.iterations == iterations;
    }

    @Override
    public int hashCode() {
        return Objects.hash(PissaInit.class, iterations);
    }
}
