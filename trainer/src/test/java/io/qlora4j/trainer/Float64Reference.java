package io.qlora4j.trainer;

import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.family.ReferenceDecoder;
import io.qlora4j.model.safetensors.SafetensorsReader;
import java.nio.file.Path;
import java.util.Arrays;

/**
 * A float64 Llama forward written out from transformers' equations (RMSNorm, rotary embedding with rotate_half,
 * grouped-query causal attention, SiLU-gated MLP, optional biases), reading a dense checkpoint: the independent
 * reference for the loss of a sequence. Plain loops; it shares nothing with the code under test but config parsing.
 */
final class Float64Reference {
    private final DecoderConfig c;
    private final SafetensorsReader reader;

    Float64Reference(Path dir, SafetensorsReader reader) throws Exception {
        this.c = ModelFamilies.read(dir.resolve("config.json"));
        this.reader = reader;
    }

    private double[] tensor(String name) throws Exception {
        float[] f = reader.floats(name);
        double[] d = new double[f.length];
        for (int i = 0; i < f.length; i++) {
            d[i] = f[i];
        }
        return d;
    }

    private double[][] linear(double[][] x, String prefix) throws Exception {
        double[] w = tensor(prefix + ".weight");
        double[] b = reader.contains(prefix + ".bias") ? tensor(prefix + ".bias") : null;
        int in = x[0].length;
        int out = w.length / in;
        double[][] y = new double[x.length][out];
        for (int t = 0; t < x.length; t++) {
            for (int o = 0; o < out; o++) {
                double s = b == null ? 0 : b[o];
                for (int i = 0; i < in; i++) {
                    s += w[o * in + i] * x[t][i];
                }
                y[t][o] = s;
            }
        }
        return y;
    }

    private double[][] norm(double[][] h, String name) throws Exception {
        double[] w = tensor(name);
        double[][] y = new double[h.length][h[0].length];
        for (int t = 0; t < h.length; t++) {
            double ms = 0;
            for (double v : h[t]) {
                ms += v * v;
            }
            double r = 1 / Math.sqrt(ms / h[t].length + c.rmsNormEps());
            for (int i = 0; i < h[t].length; i++) {
                y[t][i] = h[t][i] * r * w[i];
            }
        }
        return y;
    }

    private void rope(double[][] x, int heads, int dim) {
        int half = dim / 2;
        for (int t = 0; t < x.length; t++) {
            for (int h = 0; h < heads; h++) {
                double[] rotated = new double[dim];
                for (int j = 0; j < dim; j++) {
                    double angle = t / Math.pow(c.ropeTheta(), 2.0 * (j % half) / dim);
                    double partner = j < half ? -x[t][h * dim + j + half] : x[t][h * dim + j - half];
                    rotated[j] = x[t][h * dim + j] * Math.cos(angle) + partner * Math.sin(angle);
                }
                System.arraycopy(rotated, 0, x[t], h * dim, dim);
            }
        }
    }

    /** The mean cross-entropy of predicting {@code ids[1..]} from the tokens before each. */
    double loss(long[] ids) throws Exception {
        int s = ids.length;
        int d = c.hiddenSize();
        int heads = c.numAttentionHeads();
        int kvHeads = c.numKeyValueHeads();
        int dim = c.headDim();
        double[] embed = tensor("model.embed_tokens.weight");
        double[][] h = new double[s][d];
        for (int t = 0; t < s; t++) {
            System.arraycopy(embed, (int) ids[t] * d, h[t], 0, d);
        }
        for (int l = 0; l < c.numHiddenLayers(); l++) {
            String p = "model.layers." + l + ".";
            double[][] x = norm(h, p + "input_layernorm.weight");
            double[][] q = linear(x, p + "self_attn.q_proj");
            double[][] k = linear(x, p + "self_attn.k_proj");
            double[][] v = linear(x, p + "self_attn.v_proj");
            rope(q, heads, dim);
            rope(k, kvHeads, dim);
            double[][] attn = new double[s][heads * dim];
            for (int hd = 0; hd < heads; hd++) {
                int kv = hd / (heads / kvHeads);
                for (int t = 0; t < s; t++) {
                    double[] score = new double[t + 1];
                    double max = Double.NEGATIVE_INFINITY;
                    for (int u = 0; u <= t; u++) {
                        double dot = 0;
                        for (int j = 0; j < dim; j++) {
                            dot += q[t][hd * dim + j] * k[u][kv * dim + j];
                        }
                        score[u] = dot / Math.sqrt(dim);
                        max = Math.max(max, score[u]);
                    }
                    double sum = 0;
                    for (int u = 0; u <= t; u++) {
                        score[u] = Math.exp(score[u] - max);
                        sum += score[u];
                    }
                    for (int u = 0; u <= t; u++) {
                        for (int j = 0; j < dim; j++) {
                            attn[t][hd * dim + j] += score[u] / sum * v[u][kv * dim + j];
                        }
                    }
                }
            }
            double[][] o = linear(attn, p + "self_attn.o_proj");
            for (int t = 0; t < s; t++) {
                for (int i = 0; i < d; i++) {
                    h[t][i] += o[t][i];
                }
            }
            double[][] x2 = norm(h, p + "post_attention_layernorm.weight");
            double[][] gate = linear(x2, p + "mlp.gate_proj");
            double[][] up = linear(x2, p + "mlp.up_proj");
            for (int t = 0; t < s; t++) {
                for (int i = 0; i < gate[t].length; i++) {
                    gate[t][i] = gate[t][i] / (1 + Math.exp(-gate[t][i])) * up[t][i];
                }
            }
            double[][] down = linear(gate, p + "mlp.down_proj");
            for (int t = 0; t < s; t++) {
                for (int i = 0; i < d; i++) {
                    h[t][i] += down[t][i];
                }
            }
        }
        double[][] logits = linear(norm(h, "model.norm.weight"), "lm_head");
        return ReferenceDecoder.crossEntropy(logits, Arrays.stream(ids).mapToInt(Math::toIntExact).toArray())
                / (s - 1);
    }
}
