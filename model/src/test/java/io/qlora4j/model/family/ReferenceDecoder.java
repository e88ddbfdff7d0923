package io.qlora4j.model.family;

import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Map;
import java.util.Set;

/**
 * An independent float64 decoder of every supported family, written straight from transformers' equations (see the
 * Javadoc of each family class) for one sequence at a time: plain loops, no NDArrays, nothing shared with the main
 * code. What it computes is fixed by a {@link Spec} the test writes itself, never by qlora4j's reading of a
 * config.json, so a test that writes a config.json from the same intent checks that reading too. RoPE is a rotation
 * of the pairs (j, j + d/2) over the first d = rotary_dim features; GQA maps query head h to key/value head
 * h / (heads / kv_heads). Shared with other modules' tests through the test jar.
 */
public final class ReferenceDecoder {
    private final Spec c;
    private final Map<String, float[]> w;

    /** The reference of {@code spec} on {@code weights} (Hugging Face names, row-major {@code [out, in]}). */
    public ReferenceDecoder(Spec spec, Map<String, float[]> weights) {
        this.c = spec;
        this.w = weights;
    }

    /**
     * What a decoder computes, as the test intends it.
     *
     * @param modelType config.json's model_type
     * @param hidden hidden_size
     * @param inter intermediate_size
     * @param layers num_hidden_layers
     * @param heads num_attention_heads
     * @param kvHeads num_key_value_heads
     * @param headDim head_dim
     * @param vocab vocab_size
     * @param eps rms_norm_eps
     * @param theta the RoPE base
     * @param tied lm_head is the embedding
     * @param biased short projection names that carry a bias ({@code q_proj}, ...)
     * @param fused Phi-3's qkv_proj and gate_up_proj
     * @param qkNorm Qwen3's per-head q_norm and k_norm before RoPE
     * @param offsetNorm Gemma's {@code x * (1 + w)} in every norm
     * @param activation silu, gelu or gelu_tanh
     * @param scaledEmbedding embeddings times sqrt(hidden)
     * @param sandwich Gemma 2's post-attention and pre/post-feedforward norms
     * @param scoreScale the factor of {@code q . k}
     * @param attnCap the attention soft-cap, or null
     * @param finalCap the logit soft-cap, or null
     * @param windows the window of each layer (0: full causal)
     * @param rotaryDim the rotated features of a head
     * @param rope the RoPE scaling rule
     */
    public record Spec(String modelType, int hidden, int inter, int layers, int heads, int kvHeads, int headDim,
            int vocab, double eps, double theta, boolean tied, Set<String> biased, boolean fused, boolean qkNorm,
            boolean offsetNorm, String activation, boolean scaledEmbedding, boolean sandwich, double scoreScale,
            Double attnCap, Double finalCap, List<Integer> windows, int rotaryDim, Rope rope) {

        /** A Llama-like spec of these sizes: no bias, SiLU, full attention, theta 10000, eps 1e-6, untied. */
        public static Spec of(String modelType, int hidden, int inter, int layers, int heads, int kvHeads, int headDim,
                int vocab) {
            return new Spec(modelType, hidden, inter, layers, heads, kvHeads, headDim, vocab, 1e-6, 10000, false,
                    Set.of(), false, false, false, "silu", false, false, 1 / Math.sqrt(headDim), null, null,
                    Collections.nCopies(layers, 0), headDim, Rope.NONE);
        }

        /** The spec with {@code fields} changed through a copy. */
        public Spec with(java.util.function.UnaryOperator<Builder> fields) {
            return fields.apply(new Builder(this)).build();
        }
    }

    /**
     * A RoPE scaling rule.
     *
     * @param type none, linear, dynamic, llama3 or longrope
     * @param factor linear/dynamic/llama3 factor
     * @param low llama3 low_freq_factor
     * @param high llama3 high_freq_factor
     * @param original llama3/longrope original context; dynamic: max_position_embeddings
     * @param shortFactor longrope short factors
     * @param longFactor longrope long factors
     * @param attentionFactor longrope cos/sin factor
     */
    public record Rope(String type, double factor, double low, double high, int original, List<Double> shortFactor,
            List<Double> longFactor, double attentionFactor) {
        /** No scaling. */
        public static final Rope NONE = new Rope("none", 1, 0, 0, 0, List.of(), List.of(), 1);
    }

    /** Copies a spec field by field. */
    public static final class Builder {
        private final Object[] v;

        private Builder(Spec s) {
            v = new Object[] {s.modelType(), s.hidden(), s.inter(), s.layers(), s.heads(), s.kvHeads(), s.headDim(),
                s.vocab(), s.eps(), s.theta(), s.tied(), s.biased(), s.fused(), s.qkNorm(), s.offsetNorm(),
                s.activation(), s.scaledEmbedding(), s.sandwich(), s.scoreScale(), s.attnCap(), s.finalCap(),
                s.windows(), s.rotaryDim(), s.rope()};
        }

        private Builder set(int i, Object value) {
            v[i] = value;
            return this;
        }

        /** Sets rms_norm_eps. */
        public Builder eps(double x) {
            return set(8, x);
        }

        /** Sets the RoPE base. */
        public Builder theta(double x) {
            return set(9, x);
        }

        /** Sets tied embeddings. */
        public Builder tied(boolean x) {
            return set(10, x);
        }

        /** Sets the biased projections (short names). */
        public Builder biased(String... names) {
            return set(11, Set.of(names));
        }

        /** Sets Phi-3's fused projections. */
        public Builder fused(boolean x) {
            return set(12, x);
        }

        /** Sets Qwen3's q/k norms. */
        public Builder qkNorm(boolean x) {
            return set(13, x);
        }

        /** Sets Gemma's (1 + w) norms. */
        public Builder offsetNorm(boolean x) {
            return set(14, x);
        }

        /** Sets the activation (silu, gelu, gelu_tanh). */
        public Builder activation(String x) {
            return set(15, x);
        }

        /** Sets Gemma's embedding scale. */
        public Builder scaledEmbedding(boolean x) {
            return set(16, x);
        }

        /** Sets Gemma 2's sandwich norms. */
        public Builder sandwich(boolean x) {
            return set(17, x);
        }

        /** Sets the score factor. */
        public Builder scoreScale(double x) {
            return set(18, x);
        }

        /** Sets the attention soft-cap. */
        public Builder attnCap(Double x) {
            return set(19, x);
        }

        /** Sets the logit soft-cap. */
        public Builder finalCap(Double x) {
            return set(20, x);
        }

        /** Sets each layer's window (0: full). */
        public Builder windows(Integer... x) {
            return set(21, List.of(x));
        }

        /** Sets the rotated features of a head. */
        public Builder rotaryDim(int x) {
            return set(22, x);
        }

        /** Sets the RoPE scaling. */
        public Builder rope(Rope x) {
            return set(23, x);
        }

        @SuppressWarnings("unchecked")
        private Spec build() {
            return new Spec((String) v[0], (int) v[1], (int) v[2], (int) v[3], (int) v[4], (int) v[5], (int) v[6],
                    (int) v[7], (double) v[8], (double) v[9], (boolean) v[10], (Set<String>) v[11], (boolean) v[12],
                    (boolean) v[13], (boolean) v[14], (String) v[15], (boolean) v[16], (boolean) v[17],
                    (double) v[18], (Double) v[19], (Double) v[20], (List<Integer>) v[21], (int) v[22], (Rope) v[23]);
        }
    }

    /**
     * Logits {@code [s][vocab]} for {@code ids} at {@code positions}; key j is visible to query i iff {@code j <= i},
     * {@code real[j]} and (on a layer with window W) {@code i - j < W}. Rows whose query sees no key are left at zero.
     */
    public double[][] forward(int[] ids, int[] positions, boolean[] real) {
        int s = ids.length;
        double[][] h = new double[s][];
        for (int i = 0; i < s; i++) {
            h[i] = row(w.get("model.embed_tokens.weight"), ids[i], c.hidden());
            if (c.scaledEmbedding()) {
                h[i] = scale(h[i], Math.sqrt(c.hidden()));
            }
        }
        int maxPosition = 0;
        for (int p : positions) {
            maxPosition = Math.max(maxPosition, p);
        }
        double[] invFreq = inverseFrequencies(maxPosition + 1);
        for (int l = 0; l < c.layers(); l++) {
            String p = "model.layers." + l + ".";
            double[][] attn = attention(p, norm(h, w.get(p + "input_layernorm.weight")), positions, real, invFreq,
                    c.windows().get(l));
            if (c.sandwich()) {
                attn = norm(attn, w.get(p + "post_attention_layernorm.weight"));
            }
            h = add(h, attn);
            double[][] n = norm(h, w.get(p + (c.sandwich() ? "pre_feedforward_layernorm" : "post_attention_layernorm")
                    + ".weight"));
            double[][] mlp = new double[s][];
            for (int i = 0; i < s; i++) {
                mlp[i] = mlp(p, n[i]);
            }
            if (c.sandwich()) {
                mlp = norm(mlp, w.get(p + "post_feedforward_layernorm.weight"));
            }
            h = add(h, mlp);
        }
        double[][] n = norm(h, w.get("model.norm.weight"));
        String head = c.tied() ? "model.embed_tokens" : "lm_head";
        double[][] logits = new double[s][];
        for (int i = 0; i < s; i++) {
            logits[i] = linear(head, n[i]);
            if (c.finalCap() != null) {
                for (int v = 0; v < logits[i].length; v++) {
                    logits[i][v] = Math.tanh(logits[i][v] / c.finalCap()) * c.finalCap();
                }
            }
        }
        return logits;
    }

    /** The summed negative log-likelihood of {@code ids[1..]} given their prefixes. */
    public double nll(int[] ids) {
        int[] positions = new int[ids.length];
        boolean[] real = new boolean[ids.length];
        for (int i = 0; i < ids.length; i++) {
            positions[i] = i;
            real[i] = true;
        }
        return crossEntropy(forward(ids, positions, real), ids);
    }

    /** The summed cross-entropy of {@code ids[1..]} under the {@code logits} of their prefixes. */
    public static double crossEntropy(double[][] logits, int[] ids) {
        double nll = 0;
        for (int i = 0; i + 1 < ids.length; i++) {
            double max = Double.NEGATIVE_INFINITY;
            for (double z : logits[i]) {
                max = Math.max(max, z);
            }
            double sum = 0;
            for (double z : logits[i]) {
                sum += Math.exp(z - max);
            }
            nll += max + Math.log(sum) - logits[i][ids[i + 1]];
        }
        return nll;
    }

    private double[] mlp(String p, double[] x) {
        double[] gate;
        double[] up;
        if (c.fused()) {
            double[] gateUp = linear(p + "mlp.gate_up_proj", x);
            gate = slice(gateUp, 0, c.inter());
            up = slice(gateUp, c.inter(), 2 * c.inter());
        } else {
            gate = linear(p + "mlp.gate_proj", x);
            up = linear(p + "mlp.up_proj", x);
        }
        double[] act = new double[gate.length];
        for (int j = 0; j < act.length; j++) {
            act[j] = activate(gate[j]) * up[j];
        }
        return linear(p + "mlp.down_proj", act);
    }

    private double activate(double g) {
        return switch (c.activation()) {
            case "silu" -> g / (1 + Math.exp(-g));
            case "gelu" -> 0.5 * g * (1 + erf(g / Math.sqrt(2)));
            case "gelu_tanh" -> 0.5 * g * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (g + 0.044715 * g * g * g)));
            default -> throw new IllegalArgumentException(c.activation());
        };
    }

    /** erf by its Maclaurin series below 3 (error ~1e-12 in doubles), by 1 - erfc's continued fraction above. */
    static double erf(double x) {
        double a = Math.abs(x);
        double result;
        if (a < 3) {
            double term = a;
            double sum = a;
            for (int n = 1; n < 100; n++) {
                term *= -a * a / n;
                sum += term / (2 * n + 1);
            }
            result = 2 / Math.sqrt(Math.PI) * sum;
        } else {
            double f = 0;
            for (int k = 60; k >= 1; k--) {
                f = k / 2.0 / (a + f);
            }
            result = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / (a + f);
        }
        return Math.signum(x) * result;
    }

    private double[] inverseFrequencies(int seqLen) {
        int d = c.rotaryDim();
        double theta = c.theta();
        Rope r = c.rope();
        if (r.type().equals("dynamic")) {
            double len = Math.max(seqLen, r.original());
            theta = theta * Math.pow(r.factor() * len / r.original() - (r.factor() - 1), d / (double) (d - 2));
        }
        double[] f = new double[d / 2];
        for (int i = 0; i < f.length; i++) {
            f[i] = Math.pow(theta, -2.0 * i / d);
            if (r.type().equals("llama3")) {
                double wavelen = 2 * Math.PI / f[i];
                if (wavelen > r.original() / r.low()) {
                    f[i] = f[i] / r.factor();
                } else if (wavelen >= r.original() / r.high()) {
                    double smooth = (r.original() / wavelen - r.low()) / (r.high() - r.low());
                    f[i] = (1 - smooth) * f[i] / r.factor() + smooth * f[i];
                }
            } else if (r.type().equals("longrope")) {
                f[i] /= (seqLen > r.original() ? r.longFactor() : r.shortFactor()).get(i);
            }
        }
        return f;
    }

    private double[][] attention(String p, double[][] x, int[] positions, boolean[] real, double[] invFreq,
            int window) {
        int s = x.length;
        int heads = c.heads();
        int kv = c.kvHeads();
        int hd = c.headDim();
        double[][] q = new double[s][];
        double[][] k = new double[s][];
        double[][] v = new double[s][];
        for (int i = 0; i < s; i++) {
            double pos = positions[i];
            if (c.rope().type().equals("linear")) {
                pos /= c.rope().factor();
            }
            double[] qi;
            double[] ki;
            if (c.fused()) {
                double[] qkv = linear(p + "self_attn.qkv_proj", x[i]);
                qi = slice(qkv, 0, heads * hd);
                ki = slice(qkv, heads * hd, (heads + kv) * hd);
                v[i] = slice(qkv, (heads + kv) * hd, (heads + 2 * kv) * hd);
            } else {
                qi = linear(p + "self_attn.q_proj", x[i]);
                ki = linear(p + "self_attn.k_proj", x[i]);
                v[i] = linear(p + "self_attn.v_proj", x[i]);
            }
            if (c.qkNorm()) {
                qi = perHeadNorm(qi, heads, w.get(p + "self_attn.q_norm.weight"));
                ki = perHeadNorm(ki, kv, w.get(p + "self_attn.k_norm.weight"));
            }
            q[i] = rotate(qi, heads, pos, invFreq);
            k[i] = rotate(ki, kv, pos, invFreq);
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
                    if (j <= i && real[j] && (window == 0 || i - j < window)) {
                        double dot = 0;
                        for (int d = 0; d < hd; d++) {
                            dot += q[i][head * hd + d] * k[j][kvHead * hd + d];
                        }
                        score[j] = dot * c.scoreScale();
                        if (c.attnCap() != null) {
                            score[j] = Math.tanh(score[j] / c.attnCap()) * c.attnCap();
                        }
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

    /** Rotates each head's pairs (j, j + d/2), j < d/2, by position * invFreq[j]; features from d on pass. */
    private double[] rotate(double[] x, int nHeads, double position, double[] invFreq) {
        int hd = c.headDim();
        int half = c.rotaryDim() / 2;
        double attention = c.rope().attentionFactor();
        double[] out = x.clone();
        for (int head = 0; head < nHeads; head++) {
            for (int j = 0; j < half; j++) {
                double a = position * invFreq[j];
                double cos = Math.cos(a) * attention;
                double sin = Math.sin(a) * attention;
                double x1 = x[head * hd + j];
                double x2 = x[head * hd + j + half];
                out[head * hd + j] = x1 * cos - x2 * sin;
                out[head * hd + j + half] = x2 * cos + x1 * sin;
            }
        }
        return out;
    }

    private double[] perHeadNorm(double[] x, int nHeads, float[] weight) {
        int hd = c.headDim();
        double[][] rows = new double[nHeads][];
        for (int head = 0; head < nHeads; head++) {
            rows[head] = slice(x, head * hd, (head + 1) * hd);
        }
        double[][] normed = norm(rows, weight);
        double[] out = new double[x.length];
        for (int head = 0; head < nHeads; head++) {
            System.arraycopy(normed[head], 0, out, head * hd, hd);
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
            double scale = 1 / Math.sqrt(ms / x[i].length + c.eps());
            out[i] = new double[x[i].length];
            for (int j = 0; j < x[i].length; j++) {
                out[i][j] = x[i][j] * scale * (c.offsetNorm() ? 1 + weight[j] : weight[j]);
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

    private static double[] slice(double[] x, int from, int to) {
        double[] out = new double[to - from];
        System.arraycopy(x, from, out, 0, out.length);
        return out;
    }

    private static double[] scale(double[] x, double factor) {
        double[] out = new double[x.length];
        for (int i = 0; i < x.length; i++) {
            out[i] = x[i] * factor;
        }
        return out;
    }

    private static double[][] add(double[][] a, double[][] b) {
        List<double[]> rows = new ArrayList<>();
        for (int i = 0; i < a.length; i++) {
            double[] r = new double[a[i].length];
            for (int j = 0; j < r.length; j++) {
                r[j] = a[i][j] + b[i][j];
            }
            rows.add(r);
        }
        return rows.toArray(new double[0][]);
    }
}
