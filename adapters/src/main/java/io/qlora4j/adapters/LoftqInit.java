package io.qlora4j.adapters;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.FormatKeys;
import io.qlora4j.quant.FloatSource;
import java.util.Map;
import java.util.Objects;
import java.util.Random;
import java.util.TreeMap;

/**
 * LoftQ (LoRA-fine-tuning-aware quantization) as PEFT's {@code loftq_utils.loftq_init} computes it: starting from
 * {@code res = W}, each of {@code loftq_iter} iterations quantizes {@code Q = deq(quant(res))}, takes the rank-r SVD
 * of {@code W - Q} as {@code L = U sqrt(S)}, {@code R = sqrt(S) V^T}, and (unless it is the last) sets
 * {@code res = W - L R}; then {@code A = R}, {@code B = L}, and the base holds Q.
 *
 * <p>Two choices differ from PEFT, whose LoftQ quantizes with bitsandbytes NF4 at blocksize 64 without double
 * quantization and keeps the dequantized Q as a float base: over a quantized base qlora4j quantizes in the base's own
 * format (its {@code loftq_bits} must be the base's bits), and the base stores exactly those codes, so the adapter
 * starts against the weights it trains over; over a dense base it quantizes as PEFT does and the base holds Q in
 * float32, as PEFT's. Like PEFT it does not divide by the scaling: the starting model is {@code Q + (alpha / r) L R},
 * which approximates W only when {@code lora_alpha = lora_rank}. Each iteration's error
 * {@code ||W - (Q + L R)||} goes to the {@link InitReport}.
 */
final class LoftqInit extends AdapterInit {
    private final int bits;
    private final int iterations;

    LoftqInit(int bits, int iterations) {
        if (bits != 4 && bits != 8) {
            throw new IllegalArgumentException("loftq_bits must be 4 or 8 (PEFT's NF4 or int8), got " + bits);
        }
        if (iterations < 1) {
            throw new IllegalArgumentException("loftq_iter must be at least 1, got " + iterations);
        }
        this.bits = bits;
        this.iterations = iterations;
    }

    /** The bits of the quantization it alternates with. */
    int bits() {
        return bits;
    }

    @Override
    public Object peftValue() {
        return "loftq";
    }

    @Override
    public String describe() {
        return "LoftQ (" + bits + "-bit, " + iterations + (iterations == 1 ? " iteration)" : " iterations)");
    }

    @Override
    public boolean rewritesBase() {
        return true;
    }

    @Override
    Map<String, Object> configFields() {
        Map<String, Object> config = new TreeMap<>();
        config.put("loftq_bits", bits);
        config.put("loftq_iter", iterations);
        return Map.of("loftq_config", config);
    }

    @Override
    Split split(String module, float[] w, long[] shape, LoraSettings settings, BaseFormat format, Random random,
            NDManager manager, InitReport report) throws ModelException {
        boolean dense = format == BaseFormats.DENSE;
        if (!dense && format.bits() != bits) {
            throw new ModelException(module + ": LoftQ with loftq_bits " + bits + " over a " + format.describe()
                    + " base; LoftQ quantizes in the base's format, so loftq_bits must be " + format.bits());
        }
        BaseFormat quantizing = dense ? pefts(bits) : format;
        int out = Math.toIntExact(shape[0]);
        int in = Math.toIntExact(shape[1]);
        int r = settings.rank();
        float[] res = w;
        float[] quantized = w;
        float[] q = null;
        float[] lr = null;
        float[] left = null;
        float[] right = null;
        try (NDManager m = manager.newSubManager()) {
            for (int i = 0; i < iterations; i++) {
                quantized = res;
                q = quantizing.quantize(FloatSource.of(res), shape).dequantize();
                res = minus(w, q);
                TruncatedSvd svd = TruncatedSvd.exact(m.create(res, new Shape(out, in)), r);
                left = new float[out * r];
                right = new float[r * in];
                for (int k = 0; k < r; k++) {
                    float root = (float) Math.sqrt((float) svd.s()[k]);
                    for (int o = 0; o < out; o++) {
                        left[o * r + k] = (float) svd.u()[o][k] * root;
                    }
                    for (int j = 0; j < in; j++) {
                        right[k * in + j] = root * (float) svd.v()[j][k];
                    }
                }
                NDArray product = m.create(left, new Shape(out, r)).matMul(m.create(right, new Shape(r, in)));
                lr = product.toFloatArray();
                product.close();
                report.loftqIteration(i, errorSquared(w, q, lr, 1), squares(w));
                if (i + 1 < iterations) {
                    res = minus(w, lr);
                }
            }
        }
        report.loftqStart(errorSquared(w, q, lr, settings.scaling()), squares(w));
        return new Split(dense ? q : quantized, right, left);
    }

    /** PEFT's LoftQ quantization of a float base: bitsandbytes NF4, blocksize 64, no double quantization; or int8. */
    private static BaseFormat pefts(int bits) throws ModelException {
        return BaseFormats.fromKeys(new FormatKeys("bnb", bits, Map.of("quantization_type", "nf4",
                "double_quantization", false, "quantization_blocksize", 64)));
    }

    private static float[] minus(float[] a, float[] b) {
        float[] out = new float[a.length];
        for (int i = 0; i < a.length; i++) {
            out[i] = a[i] - b[i];
        }
        return out;
    }

    /** {@code ||w - (q + scale * lr)||^2} in float64. */
    private static double errorSquared(float[] w, float[] q, float[] lr, double scale) {
        double sum = 0;
        for (int i = 0; i < w.length; i++) {
            double d = (double) w[i] - q[i] - scale * lr[i];
            sum += d * d;
        }
        return sum;
    }

    private static double squares(float[] w) {
        double sum = 0;
        for (float v : w) {
            sum += (double) v * v;
        }
        return sum;
    }

    @Override
    public boolean equals(Object o) {
        return o instanceof LoftqInit l && l.bits == bits && l.iterations == iterations;
    }

    @Override
    public int hashCode() {
        return Objects.hash(LoftqInit.class, bits, iterations);
    }
}
