package io.qlora4j.adapters;

import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.llama.ReferenceLlama;
import java.util.Map;

/**
 * An independent float64 forward of a {@link TinyModel} (one sequence, full causal attention, no RoPE scaling)
 * with LoRA updates {@code W x + scaling * B (A x)} on chosen projections, or DoRA's
 * {@code (m / ||W + scaling B A||_row) (W + scaling B A) x}: plain loops from the equations of FORMATS.md sections 6
 * and 7 and the DoRA paper, sharing nothing with the code under test.
 */
final class ReferenceForward {
    /**
     * An update in float64: {@code a [rank * in]} and {@code b [out * rank]} row-major, and for DoRA the magnitude
     * {@code [out]} (null for LoRA).
     */
    record Lora(double[] a, double[] b, int rank, double scaling, double[] magnitude) {
        Lora(double[] a, double[] b, int rank, double scaling) {
            this(a, b, rank, scaling, null);
        }
    }

    private final TinyModel tiny;
    private final DecoderConfig c;
    private final Map<String, Lora> lora;

    /** {@code lora} maps module paths ({@code model.layers.0.self_attn.q_proj}) to their updates. */
    ReferenceForward(TinyModel tiny, Map<String, Lora> lora) {
        this.tiny = tiny;
        this.c = tiny.config;
        this.lora = lora;
    }

    /** Logits {@code [s][vocab]} for {@code ids} at positions 0..s-1. */
    double[][] logits(int[] ids) {
        int s = ids.length;
        int d = c.hiddenSize();
        double[][] h = new double[s][d];
        float[] embed = tiny.weights.get("model.embed_tokens.weight");
        for (int i = 0; i < s; i++) {
            for (int j = 0; j < d; j++) {
                h[i][j] = embed[ids[i] * d + j];
            }
        }
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            double[][] x = rmsNorm(h, tiny.weights.get(p + "input_layernorm.weight"));
            double[][] q = new double[s][];
            double[][] k = new double[s][];
            double[][] v = new double[s][];
            for (int i = 0; i < s; i++) {
                q[i] = rotate(project(p + "self_attn.q_proj", x[i]), i);
                k[i] = rotate(project(p + "self_attn.k_proj", x[i]), i);
                v[i] = project(p + "self_attn.v_proj", x[i]);
            }
            for (int i = 0; i < s; i++) {
                add(h[i], project(p + "self_attn.o_proj", attend(q, k, v, i)));
            }
            x = rmsNorm(h, tiny.weights.get(p + "post_attention_layernorm.weight"));
            for (int i = 0; i < s; i++) {
                double[] gate = project(p + "mlp.gate_proj", x[i]);
                double[] up = project(p + "mlp.up_proj", x[i]);
                for (int j = 0; j < gate.length; j++) {
                    gate[j] = gate[j] / (1 + Math.exp(-gate[j])) * up[j];
                }
                add(h[i], project(p + "mlp.down_proj", gate));
            }
        }
        double[][] x = rmsNorm(h, tiny.weights.get("model.norm.weight"));
        double[][] logits = new double[s][];
        for (int i = 0; i < s; i++) {
            logits[i] = matVec(tiny.weights.get("lm_head.weight"), x[i]);
        }
        return logits;
    }

    /** Causal softmax attention of query i over keys 0..i; query head h reads key/value head h / (heads / kv). */
    private double[] attend(double[][] q, double[][] k, double[][] v, int i) {
        int hd = c.headDim();
        int group = c.numAttentionHeads() / c.numKeyValueHeads();
        double[] out = new double[c.numAttentionHeads() * hd];
        for (int head = 0; head < c.numAttentionHeads(); head++) {
            int kvOffset = head / group * hd;
            double[] score = new double[i + 1];
            double max = Double.NEGATIVE_INFINITY;
            for (int j = 0; j <= i; j++) {
                for (int e = 0; e < hd; e++) {
                    score[j] += q[i][head * hd + e] * k[j][kvOffset + e] / Math.sqrt(hd);
                }
                max = Math.max(max, score[j]);
            }
            double total = 0;
            for (int j = 0; j <= i; j++) {
                score[j] = Math.exp(score[j] - max);
                total += score[j];
            }
            for (int j = 0; j <= i; j++) {
                for (int e = 0; e < hd; e++) {
                    out[head * hd + e] += score[j] / total * v[j][kvOffset + e];
                }
            }
        }
        return out;
    }

    /** {@code W x}, plus {@code scaling * B (A x)} when the module has a LoRA update, or DoRA's rescaled rows. */
    private double[] project(String module, double[] x) {
        float[] w = tiny.weights.get(module + ".weight");
        Lora u = lora.get(module);
        if (u != null && u.magnitude() != null) {
            return dora(w, u, x);
        }
        double[] y = matVec(w, x);
        if (u != null) {
            double[] ax = new double[u.rank()];
            for (int r = 0; r < u.rank(); r++) {
                for (int j = 0; j < x.length; j++) {
                    ax[r] += u.a()[r * x.length + j] * x[j];
                }
            }
            for (int o = 0; o < y.length; o++) {
                for (int r = 0; r < u.rank(); r++) {
                    y[o] += u.scaling() * u.b()[o * u.rank() + r] * ax[r];
                }
            }
        }
        return y;
    }

    /** {@code (m_o / ||V_o||) V_o . x} per output row o of {@code V = W + scaling B A}. */
    private static double[] dora(float[] w, Lora u, double[] x) {
        int in = x.length;
        double[] y = new double[w.length / in];
        for (int o = 0; o < y.length; o++) {
            double norm = 0;
            double dot = 0;
            for (int j = 0; j < in; j++) {
                double v = w[o * in + j];
                for (int r = 0; r < u.rank(); r++) {
                    v += u.scaling() * u.b()[o * u.rank() + r] * u.a()[r * in + j];
                }
                norm += v * v;
                dot += v * x[j];
            }
            y[o] = u.magnitude()[o] / Math.sqrt(norm) * dot;
        }
        return y;
    }

    /** The mean cross-entropy of {@code ids[1..]} given their prefixes, as {@code qlora4j eval} defines it. */
    double loss(int[] ids) {
        return ReferenceLlama.meanCrossEntropy(logits(ids), ids);
    }

    /** RoPE in the rotate_half layout: each head's pair (j, j + hd/2) turns by position / theta^(2j / hd). */
    private double[] rotate(double[] x, int position) {
        int hd = c.headDim();
        double[] out = x.clone();
        for (int base = 0; base < x.length; base += hd) {
            for (int j = 0; j < hd / 2; j++) {
                double angle = position * Math.pow(c.ropeTheta(), -2.0 * j / hd);
                double x1 = x[base + j];
                double x2 = x[base + j + hd / 2];
                out[base + j] = x1 * Math.cos(angle) - x2 * Math.sin(angle);
                out[base + j + hd / 2] = x2 * Math.cos(angle) + x1 * Math.sin(angle);
            }
        }
        return out;
    }

    private double[][] rmsNorm(double[][] h, float[] weight) {
        double[][] out = new double[h.length][weight.length];
        for (int i = 0; i < h.length; i++) {
            double squares = 0;
            for (double value : h[i]) {
                squares += value * value;
            }
            double inverse = 1 / Math.sqrt(squares / weight.length + c.rmsNormEps());
            for (int j = 0; j < weight.length; j++) {
                out[i][j] = h[i][j] * inverse * weight[j];
            }
        }
        return out;
    }

    /** {@code W x} for a row-major {@code W [out, x.length]}. */
    static double[] matVec(float[] w, double[] x) {
        double[] y = new double[w.length / x.length];
        for (int o = 0; o < y.length; o++) {
            for (int j = 0; j < x.length; j++) {
                y[o] += w[o * x.length + j] * x[j];
            }
        }
        return y;
    }

    private static void add(double[] target, double[] delta) {
        for (int j = 0; j < target.length; j++) {
            target[j] += delta[j];
        }
    }
}
