package io.qlora4j.model.llama;

import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.decoder.RopeScaling;
import java.util.Map;

/**
 * An independent float64 Llama written straight from the equations of FORMATS.md section 6, for one
 * sequence at a time: plain loops, no NDArrays, nothing shared with the main code. RoPE is written as a
 * rotation of the pairs (j, j + hd/2), linear scaling divides positions, and GQA maps query head h to
 * key/value head h / (heads / kv_heads).
 */
public final class ReferenceLlama {
    private final DecoderConfig c;
    private final Map<String, float[]> w;

    /** A reference over {@code weights} (Hugging Face names, float32 values as the model holds them). */
    public ReferenceLlama(DecoderConfig config, Map<String, float[]> weights) {
        this.c = config;
        this.w = weights;
    }

    /**
     * Logits {@code [s][vocab]} for {@code ids} at {@code positions}; key j is visible to query i iff
     * {@code j <= i}, {@code real[j]} and (with a sliding window) {@code i - j < window}. Rows whose query
     * sees no key are left at zero.
     */
    public double[][] forward(int[] ids, int[] positions, boolean[] real) {
        int s = ids.length;
        int hidden = c.hiddenSize();
        double[][] h = new double[s][];
        for (int i = 0; i < s; i++) {
            h[i] = row(w.get("model.embed_tokens.weight"), ids[i], hidden);
        }
        double[] invFreq = inverseFrequencies(positions);
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            double[][] attn = attention(p, norm(h, w.get(p + "input_layernorm.weight")), positions, real, invFreq);
            for (int i = 0; i < s; i++) {
                h[i] = add(h[i], attn[i]);
            }
            double[][] n = norm(h, w.get(p + "post_attention_layernorm.weight"));
            for (int i = 0; i < s; i++) {
                double[] gate = linear(p + "mlp.gate_proj", n[i]);
                double[] up = linear(p + "mlp.up_proj", n[i]);
                double[] act = new double[gate.length];
                for (int j = 0; j < act.length; j++) {
                    act[j] = gate[j] / (1 + Math.exp(-gate[j])) * up[j];
                }
                h[i] = add(h[i], linear(p + "mlp.down_proj", act));
            }
        }
        double[][] n = norm(h, w.get("model.norm.weight"));
        String head = c.tieWordEmbeddings() ? "model.embed_tokens" : "lm_head";
        double[][] logits = new double[s][];
        for (int i = 0; i < s; i++) {
            logits[i] = linear(head, n[i]);
        }
        return logits;
    }

    private double[] inverseFrequencies(int[] positions) {
        int hd = c.headDim();
        double theta = c.ropeTheta();
        RopeScaling sc = c.ropeScaling();
        if (sc != null && sc.type() == RopeScaling.Type.DYNAMIC) {
            int maxPos = 0;
            for (int p : positions) {
                maxPos = Math.max(maxPos, p);
            }
            double len = Math.max(maxPos + 1, c.maxPositionEmbeddings());
            double ratio = sc.factor() * len / c.maxPositionEmbeddings() - (sc.factor() - 1);
            theta = theta * Math.pow(ratio, hd / (double) (hd - 2));
        }
        double[] f = new double[hd / 2];
        for (int i = 0; i < f.length; i++) {
            f[i] = Math.pow(theta, -2.0 * i / hd);
            if (sc != null && sc.type() == RopeScaling.Type.LLAMA3) {
                double orig = sc.originalMaxPositionEmbeddings();
                double wavelen = 2 * Math.PI / f[i];
                if (wavelen > orig / sc.lowFreqFactor()) {
                    f[i] = f[i] / sc.factor();
                } else if (wavelen >= orig / sc.highFreqFactor()) {
                    double smooth = (orig / wavelen - sc.lowFreqFactor()) / (sc.highFreqFactor() - sc.lowFreqFactor());
                    f[i] = (1 - smooth) * f[i] / sc.factor() + smooth * f[i];
                }
            }
        }
        return f;
    }

    private double[][] attention(String p, double[][] x, int[] positions, boolean[] real, double[] invFreq) {
        int s = x.length;
        int heads = c.numAttentionHeads();
        int kv = c.numKeyValueHeads();
        int hd = c.headDim();
        double[][] q = new double[s][];
        double[][] k = new double[s][];
        double[][] v = new double[s][];
        for (int i = 0; i < s; i++) {
            double pos = positions[i];
            if (c.ropeScaling() != null && c.ropeScaling().type() == RopeScaling.Type.LINEAR) {
                pos /= c.ropeScaling().factor();
            }
            q[i] = rotate(linear(p + "self_attn.q_proj", x[i]), heads, pos, invFreq);
            k[i] = rotate(linear(p + "self_attn.k_proj", x[i]), kv, pos, invFreq);
            v[i] = linear(p + "self_attn.v_proj", x[i]);
        }
        double[][] out = new double[s][];
        for (int i = 0; i < s; i++) {
            double[] concat = new double[heads * hd];
            for (int head = 0; head < heads; head++) {
                int kvHead = head / (heads / kv);
                double[] score = new double[s];
                double max = Double.NEGATIVE_INFINITY;
                for (int j = 0; j < s; j++) {
                    score[j] = Double.NEGATIVE_INFINITY;
                    boolean visible = j <= i && real[j]
                            && (c.slidingWindow() == null || i - j < c.slidingWindow());
                    if (visible) {
                        double dot = 0;
                        for (int d = 0; d < hd; d++) {
                            dot += q[i][head * hd + d] * k[j][kvHead * hd + d];
                        }
                        score[j] = dot / Math.sqrt(hd);
                        max = Math.max(max, score[j]);
                    }
                }
                if (max == Double.NEGATIVE_INFINITY) {
                    continue;
                }
                double sum = 0;
                for (int j = 0; j < s; j++) {
                    score[j] = Math.exp(score[j] - max);
                    sum += score[j];
                }
                for (int j = 0; j < s; j++) {
                    for (int d = 0; d < hd; d++) {
                        concat[head * hd + d] += score[j] / sum * v[j][kvHead * hd + d];
                    }
                }
            }
            out[i] = linear(p + "self_attn.o_proj", concat);
        }
        return out;
    }

    /** Rotates each head's pair (j, j + hd/2) by the angle position * invFreq[j]. */
    private double[] rotate(double[] x, int nHeads, double position, double[] invFreq) {
        int hd = c.headDim();
        int half = hd / 2;
        double[] out = new double[x.length];
        for (int head = 0; head < nHeads; head++) {
            for (int j = 0; j < half; j++) {
                double a = position * invFreq[j];
                double x1 = x[head * hd + j];
                double x2 = x[head * hd + j + half];
                out[head * hd + j] = x1 * Math.cos(a) - x2 * Math.sin(a);
                out[head * hd + j + half] = x2 * Math.cos(a) + x1 * Math.sin(a);
            }
        }
        return out;
    }

    private double[][] norm(double[][] x, float[] weight) {
        double[][] out = new double[x.length][];
        for (int i = 0; i < x.length; i++) {
            double ms = 0;
            for (double v : x[i]) {
                ms += v * v;
            }
            double scale = 1 / Math.sqrt(ms / x[i].length + c.rmsNormEps());
            out[i] = new double[x[i].length];
            for (int j = 0; j < x[i].length; j++) {
                out[i][j] = x[i][j] * scale * weight[j];
            }
        }
        return out;
    }

    /** {@code W x + b} for the weight {@code name.weight [out, in]} and the optional {@code name.bias}. */
    private double[] linear(String name, double[] x) {
        float[] weight = w.get(name + ".weight");
        float[] bias = w.get(name + ".bias");
        int out = weight.length / x.length;
        double[] y = new double[out];
        for (int o = 0; o < out; o++) {
            double acc = bias == null ? 0 : bias[o];
            for (int i = 0; i < x.length; i++) {
                acc += weight[o * x.length + i] * x[i];
            }
            y[o] = acc;
        }
        return y;
    }

    private static double[] row(float[] matrix, int r, int width) {
        double[] out = new double[width];
        for (int j = 0; j < width; j++) {
            out[j] = matrix[r * width + j];
        }
        return out;
    }

    private static double[] add(double[] a, double[] b) {
        double[] out = new double[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i] + b[i];
        }
        return out;
    }

    /** The mean cross-entropy of {@code ids[1..]} under the {@code logits} of their prefixes, as eval defines it. */
    public static double meanCrossEntropy(double[][] logits, int[] ids) {
        double nll = 0;
        for (int i = 0; i + 1 < ids.length; i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (double l : logits[i]) {
                max = Math.max(max, l);
            }
            double total = 0;
            for (double l : logits[i]) {
                total += Math.exp(l - max);
            }
            nll += max + Math.log(total) - logits[i][ids[i + 1]];
        }
        return nll / (ids.length - 1);
    }
}
