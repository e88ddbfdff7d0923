package io.qlora4j.model.decoder;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDList;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;

/**
 * The rotary position embedding of transformers' decoders ({@code rotate_half} layout): {@code inv_freq[i] = 1 / theta^(2i / hd)}
 * with the configured scaling, and the {@code cos}/{@code sin} tables {@code cat(freqs, freqs)} that
 * {@link TransformerBlock} applies to queries and keys.
 *
 * <p>Dynamic NTK follows transformers' {@code _compute_dynamic_ntk_parameters} with the sequence length of
 * the current call ({@code max(position) + 1}). transformers additionally keeps the largest length seen so
 * far until a call shorter than max_position_embeddings resets it; this class is stateless, so a call is
 * computed as a fresh transformers model would compute it.
 */
public final class RotaryEmbedding {
    private final DecoderConfig config;

    /** Creates the embedding for a config's head_dim, rope_theta and rope_scaling. */
    public RotaryEmbedding(DecoderConfig config) {
        RopeScaling s = config.ropeScaling();
        if (s != null && s.type() == RopeScaling.Type.DYNAMIC && config.rotaryDim() <= 2) {
            throw new IllegalArgumentException("dynamic rope scaling needs more than 2 rotated features");
        }
        this.config = config;
    }

    /**
     * The {@code rotary_dim / 2} inverse frequencies for a call covering positions {@code 0 .. seqLen - 1} (the
     * length matters to dynamic NTK and longrope only).
     */
    public double[] inverseFrequencies(long seqLen) {
        int hd = config.rotaryDim();
        double theta = config.ropeTheta();
        RopeScaling s = config.ropeScaling();
        RopeScaling.Type type = s == null ? null : s.type();
        if (type == RopeScaling.Type.DYNAMIC) {
            double maxPos = config.maxPositionEmbeddings();
            double len = Math.max(seqLen, maxPos);
            theta *= Math.pow(s.factor() * len / maxPos - (s.factor() - 1), hd / (hd - 2.0));
        }
        double[] inv = new double[hd / 2];
        for (int i = 0; i < inv.length; i++) {
            double f = 1.0 / Math.pow(theta, (2.0 * i) / hd);
            if (type == RopeScaling.Type.LINEAR) {
                f /= s.factor();
            } else if (type == RopeScaling.Type.LLAMA3) {
                f = llama3(f, s);
            } else if (type == RopeScaling.Type.LONGROPE) {
                f /= (seqLen > s.originalMaxPositionEmbeddings() ? s.longFactor() : s.shortFactor()).get(i);
            }
            inv[i] = f;
        }
        return inv;
    }

    /** Llama 3.1: keep high frequencies, divide low ones by factor, blend smoothly in between. */
    private static double llama3(double f, RopeScaling s) {
        double original = s.originalMaxPositionEmbeddings();
        double wavelen = 2 * Math.PI / f;
        if (wavelen < original / s.highFreqFactor()) {
            return f;
        }
        if (wavelen > original / s.lowFreqFactor()) {
            return f / s.factor();
        }
        double smooth = (original / wavelen - s.lowFreqFactor()) / (s.highFreqFactor() - s.lowFreqFactor());
        return (1 - smooth) * f / s.factor() + smooth * f;
    }

    /**
     * The tables for {@code positions [b or 1, s]} (any numeric type): {@code cos} and {@code sin}, float32
     * {@code [b or 1, s, rotary_dim]}, in the manager of {@code positions}; longrope multiplies both by its
     * attention factor. Dynamic NTK and longrope take the call's length as {@code max(positions) + 1}, as
     * transformers' {@code dynamic_rope_update} does.
     */
    public NDList cosSin(NDArray positions) {
        return Scoped.runAll(() -> {
            NDArray pos = positions.toType(DataType.FLOAT32, false);
            RopeScaling s = config.ropeScaling();
            boolean byLength = s != null && (s.type() == RopeScaling.Type.DYNAMIC || s.type() == RopeScaling.Type.LONGROPE);
            double[] inv = inverseFrequencies(byLength ? (long) pos.max().getFloat() + 1 : 0);
            float[] invF = new float[inv.length];
            for (int i = 0; i < inv.length; i++) {
                invF[i] = (float) inv[i];
            }
            NDArray freqs = pos.expandDims(-1).mul(pos.getManager().create(invF, new Shape(invF.length)));
            NDArray emb = freqs.concat(freqs, -1);
            if (s != null && s.type() == RopeScaling.Type.LONGROPE) {
                return new NDList(emb.cos().mul((float) s.attentionFactor()), emb.sin().mul((float) s.attentionFactor()));
            }
            return new NDList(emb.cos(), emb.sin());
        });
    }
}
