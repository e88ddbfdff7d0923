package io.qlora4j.model.checkpoint;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.quant.HalfFloats;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.Random;

/**
 * Test fixture (shared through the test jar): tiny Llama checkpoints ({@link TinyModels}' shapes) whose block
 * linears are stored pre-quantized in the exact Hugging Face layouts of AQLM, GPTQ and AWQ, packed here by the
 * formats' own rules (written out independently of the readers), together with the dense weights every layout
 * stands for, computed here too, so tests can compare against a float64 reference over them.
 */
public final class PrequantizedModels {
    /** The checkpoint directory and every weight of the model it stands for (float32, row-major). */
    public record Written(Path dir, Map<String, float[]> weights) {}

    private static final String[][] LINEARS = {
        {"self_attn.q_proj", "64", "64"}, {"self_attn.k_proj", "64", "64"}, {"self_attn.v_proj", "64", "64"},
        {"self_attn.o_proj", "64", "64"}, {"mlp.gate_proj", "96", "64"}, {"mlp.up_proj", "96", "64"},
        {"mlp.down_proj", "64", "96"}};

    private PrequantizedModels() {}

    /** A quantized linear's entries and the dense weight they stand for. */
    private interface Quantizer {
        float[] write(SafetensorsWriter w, String prefix, int out, int in, Random rnd) throws ModelException;
    }

    /**
     * AQLM {@code K x nbits, g ig}: random codes (a fifth of them the largest code, which a 16-bit checkpoint stores
     * as a negative int16), fp16 codebooks and scales. {@code W[o, i*ig + b] = s[o] * sum_k cb[k, code, 0, b]}.
     */
    public static Written aqlm(Path dir, int k, int nbits, int ig) throws IOException, ModelException {
        String config = "\"quantization_config\": {\"quant_method\": \"aqlm\", \"nbits_per_codebook\": " + nbits
                + ", \"num_codebooks\": " + k + ", \"out_group_size\": 1, \"in_group_size\": " + ig
                + ", \"linear_weights_not_to_quantize\": [\"model.embed_tokens.weight\", \"lm_head.weight\"]}";
        return write(dir.resolve("aqlm"), config, (w, prefix, out, in, rnd) -> {
            int size = 1 << nbits;
            int groups = out * (in / ig);
            int[] codes = new int[groups * k];
            ByteBuffer stored = ByteBuffer.allocate(codes.length * (nbits <= 8 ? 1 : 2)).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < codes.length; i++) {
                codes[i] = i % 5 == 0 ? size - 1 : rnd.nextInt(size);
                if (nbits <= 8) {
                    stored.put((byte) (codes[i] >= size / 2 ? codes[i] - size : codes[i]));
                } else {
                    stored.putShort((short) (codes[i] >= size / 2 ? codes[i] - size : codes[i]));
                }
            }
            float[] cb = new float[k * size * ig];
            for (int i = 0; i < cb.length; i++) {
                cb[i] = half(rnd.nextGaussian() * 0.3);
            }
            float[] s = new float[out];
            for (int o = 0; o < out; o++) {
                s[o] = half(0.1 + 0.2 * rnd.nextDouble());
            }
            w.addBytes(prefix + ".codes", nbits <= 8 ? DType.I8 : DType.I16, new long[] {out, in / ig, k}, stored.array());
            w.addFloats(prefix + ".codebooks", DType.F16, new long[] {k, size, 1, ig}, cb);
            w.addFloats(prefix + ".scales", DType.F16, new long[] {out, 1, 1, 1}, s);
            float[] dense = new float[out * in];
            for (int o = 0; o < out; o++) {
                for (int g = 0; g < in / ig; g++) {
                    for (int b = 0; b < ig; b++) {
                        double sum = 0;
                        for (int c = 0; c < k; c++) {
                            sum += cb[(c * size + codes[(o * (in / ig) + g) * k + c]) * ig + b];
                        }
                        dense[o * in + g * ig + b] = (float) (s[o] * sum);
                    }
                }
            }
            return dense;
        });
    }

    /**
     * GPTQ {@code bits}-bit in groups of {@code groupSize} input columns: symmetric zeros {@code 2^(bits-1)} or
     * random ones (1 and up, which every reader of the v1 minus-one form agrees on), the group of each column from a
     * random act-order permutation when {@code actOrder}; zeros stored minus one ({@code gptq}) or as they are
     * ({@code gptq_v2}); {@code W[o, i] = fp16(s[g, o] * (q[i, o] - z[g, o]))}.
     */
    public static Written gptq(Path dir, int bits, int groupSize, boolean actOrder, boolean sym, boolean v1)
            throws IOException, ModelException {
        String config = "\"quantization_config\": {\"bits\": " + bits + ", \"group_size\": " + groupSize
                + ", \"desc_act\": " + actOrder + ", \"sym\": " + sym + ", \"quant_method\": \"gptq\", "
                + "\"checkpoint_format\": \"" + (v1 ? "gptq" : "gptq_v2") + "\", \"true_sequential\": true}";
        return write(dir.resolve("gptq"), config, (w, prefix, out, in, rnd) -> {
            int groups = in / groupSize;
            int max = (1 << bits) - 1;
            int[] q = new int[in * out];
            for (int i = 0; i < q.length; i++) {
                q[i] = rnd.nextInt(max + 1);
            }
            int[] z = new int[groups * out];
            float[] s = new float[groups * out];
            for (int i = 0; i < z.length; i++) {
                z[i] = sym ? 1 << (bits - 1) : 1 + rnd.nextInt(max);
                s[i] = half(0.002 + 0.01 * rnd.nextDouble());
            }
            int[] gIdx = new int[in];
            int[] perm = permutation(in, rnd, actOrder);
            for (int pos = 0; pos < in; pos++) {
                gIdx[perm[pos]] = pos / groupSize;
            }
            int[] qweight = new int[in * bits / 32 * out];
            for (int o = 0; o < out; o++) {
                for (int i = 0; i < in; i++) {
                    putField(qweight, o, out, i, bits, q[i * out + o]);
                }
            }
            int[] qzeros = new int[groups * out * bits / 32];
            for (int g = 0; g < groups; g++) {
                for (int o = 0; o < out; o++) {
                    putField(qzeros, g * (out * bits / 32), 1, o, bits, z[g * out + o] - (v1 ? 1 : 0));
                }
            }
            w.addBytes(prefix + ".qweight", DType.I32, new long[] {in * bits / 32, out}, ints(qweight));
            w.addBytes(prefix + ".qzeros", DType.I32, new long[] {groups, out * bits / 32}, ints(qzeros));
            w.addFloats(prefix + ".scales", DType.F16, new long[] {groups, out}, s);
            w.addBytes(prefix + ".g_idx", DType.I32, new long[] {in}, ints(gIdx));
            float[] dense = new float[out * in];
            for (int o = 0; o < out; o++) {
                for (int i = 0; i < in; i++) {
                    int g = gIdx[i];
                    dense[o * in + i] = half(s[g * out + o] * (double) (q[i * out + o] - z[g * out + o]));
                }
            }
            return dense;
        });
    }

    /** AWQ gemm 4-bit in groups of {@code groupSize} input rows, nibbles in AutoAWQ's interleaved order. */
    public static Written awq(Path dir, int groupSize) throws IOException, ModelException {
        String config = "\"quantization_config\": {\"quant_method\": \"awq\", \"zero_point\": true, \"group_size\": "
                + groupSize + ", \"bits\": 4, \"version\": \"gemm\", \"modules_to_not_convert\": null}";
        int[] order = {0, 2, 4, 6, 1, 3, 5, 7};
        return write(dir.resolve("awq"), config, (w, prefix, out, in, rnd) -> {
            int groups = in / groupSize;
            int[] q = new int[in * out];
            for (int i = 0; i < q.length; i++) {
                q[i] = rnd.nextInt(16);
            }
            int[] z = new int[groups * out];
            float[] s = new float[groups * out];
            for (int i = 0; i < z.length; i++) {
                z[i] = rnd.nextInt(16);
                s[i] = half(0.002 + 0.01 * rnd.nextDouble());
            }
            int[] qweight = new int[in * out / 8];
            for (int i = 0; i < in; i++) {
                for (int c = 0; c < out / 8; c++) {
                    for (int n = 0; n < 8; n++) {
                        qweight[i * (out / 8) + c] |= q[i * out + 8 * c + order[n]] << (4 * n);
                    }
                }
            }
            int[] qzeros = new int[groups * out / 8];
            for (int g = 0; g < groups; g++) {
                for (int c = 0; c < out / 8; c++) {
                    for (int n = 0; n < 8; n++) {
                        qzeros[g * (out / 8) + c] |= z[g * out + 8 * c + order[n]] << (4 * n);
                    }
                }
            }
            w.addBytes(prefix + ".qweight", DType.I32, new long[] {in, out / 8}, ints(qweight));
            w.addBytes(prefix + ".qzeros", DType.I32, new long[] {groups, out / 8}, ints(qzeros));
            w.addFloats(prefix + ".scales", DType.F16, new long[] {groups, out}, s);
            float[] dense = new float[out * in];
            for (int o = 0; o < out; o++) {
                for (int i = 0; i < in; i++) {
                    int g = i / groupSize;
                    dense[o * in + i] = half(s[g * out + o] * (double) (q[i * out + o] - z[g * out + o]));
                }
            }
            return dense;
        });
    }

    private static Written write(Path model, String quantizationConfig, Quantizer quantizer)
            throws IOException, ModelException {
        Files.createDirectories(model);
        Files.writeString(model.resolve("config.json"), "{\"model_type\": \"llama\", \"hidden_size\": "
                + TinyModels.HIDDEN + ", \"intermediate_size\": " + TinyModels.INTER + ", \"num_hidden_layers\": 1,"
                + " \"num_attention_heads\": 4, \"vocab_size\": " + TinyModels.VOCAB + ", \"bos_token_id\": 1,"
                + " \"eos_token_id\": 2, \"torch_dtype\": \"float16\", " + quantizationConfig + "}");
        Files.writeString(model.resolve("tokenizer.json"), TinyModels.tokenizerJson());
        Random rnd = new Random(17);
        Map<String, float[]> weights = new LinkedHashMap<>();
        try (SafetensorsWriter w = SafetensorsWriter.builder(model).build()) {
            dense(w, weights, rnd, "model.embed_tokens.weight", TinyModels.VOCAB, TinyModels.HIDDEN);
            dense(w, weights, rnd, "model.layers.0.input_layernorm.weight", TinyModels.HIDDEN);
            dense(w, weights, rnd, "model.layers.0.post_attention_layernorm.weight", TinyModels.HIDDEN);
            for (String[] l : LINEARS) {
                String prefix = "model.layers.0." + l[0];
                weights.put(prefix + ".weight",
                        quantizer.write(w, prefix, Integer.parseInt(l[1]), Integer.parseInt(l[2]), rnd));
            }
            dense(w, weights, rnd, "model.norm.weight", TinyModels.HIDDEN);
            dense(w, weights, rnd, "lm_head.weight", TinyModels.VOCAB, TinyModels.HIDDEN);
        }
        return new Written(model, weights);
    }

    private static void dense(SafetensorsWriter w, Map<String, float[]> weights, Random rnd, String name,
            long... shape) throws ModelException {
        int n = 1;
        for (long d : shape) {
            n *= (int) d;
        }
        float[] v = new float[n];
        for (int i = 0; i < n; i++) {
            v[i] = name.contains("norm") ? half(1 + 0.1 * rnd.nextGaussian()) : half(rnd.nextGaussian() * 0.3);
        }
        w.addFloats(name, DType.F16, shape, v);
        weights.put(name, v);
    }

    /** Field {@code j} of a little-endian stream of {@code bits}-bit fields over words {@code start + k * stride}. */
    private static void putField(int[] words, int start, int stride, int j, int bits, int value) {
        for (int b = 0; b < bits; b++) {
            long bit = (long) j * bits + b;
            if (((value >>> b) & 1) != 0) {
                words[start + (int) (bit / 32) * stride] |= 1 << (bit % 32);
            }
        }
    }

    private static int[] permutation(int n, Random rnd, boolean shuffle) {
        int[] p = new int[n];
        for (int i = 0; i < n; i++) {
            p[i] = i;
        }
        for (int i = n - 1; shuffle && i > 0; i--) {
            int j = rnd.nextInt(i + 1);
            int t = p[i];
            p[i] = p[j];
            p[j] = t;
        }
        return p;
    }

    private static byte[] ints(int[] values) {
        ByteBuffer b = ByteBuffer.allocate(values.length * 4).order(ByteOrder.LITTLE_ENDIAN);
        for (int v : values) {
            b.putInt(v);
        }
        return b.array();
    }

    private static float half(double v) {
        return HalfFloats.f16ToFloat(HalfFloats.floatToF16((float) v));
    }
}
