package io.qlora4j.trainer;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.checkpoint.AtomicFiles;
import io.qlora4j.model.llama.LlamaBlock;
import io.qlora4j.model.llama.LlamaConfig;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Random;

/**
 * A freshly initialized Llama written as a Hugging Face directory, the starting point for pre-training a
 * base model with {@code finetuning_type: full}. Initialization follows transformers' Llama: every
 * projection, the embeddings and lm_head drawn from N(0, std^2) ({@code initializer_range}, 0.02), every
 * RMSNorm weight 1. Weights are drawn in file order from one seeded generator, so a seed gives one model.
 */
public final class RandomModel {
    private RandomModel() {}

    /**
     * Reads {@code sourceDir/config.json}, writes random float32 weights drawn from {@code seed} with standard
     * deviation {@code std} into {@code outDir/model.safetensors}, and copies config.json and the tokenizer
     * files found beside it.
     *
     * @throws ModelException when config.json is missing or invalid
     */
    public static void write(Path sourceDir, Path outDir, long seed, double std) throws ModelException, IOException {
        LlamaConfig c = LlamaConfig.read(sourceDir.resolve("config.json"));
        Random random = new Random(seed);
        Files.createDirectories(outDir);
        int hidden = c.hiddenSize();
        try (SafetensorsWriter writer = SafetensorsWriter.builder(outDir).build()) {
            writer.addFloats("model.embed_tokens.weight", DType.F32, new long[] {c.vocabSize(), hidden},
                    normal(random, (long) c.vocabSize() * hidden, std));
            for (int l = 0; l < c.numHiddenLayers(); l++) {
                String p = "model.layers." + l + ".";
                writer.addFloats(p + "input_layernorm.weight", DType.F32, new long[] {hidden}, ones(hidden));
                for (String name : LlamaBlock.LINEAR_NAMES) {
                    long[] shape = outIn(c, name);
                    writer.addFloats(p + name + ".weight", DType.F32, shape, normal(random, shape[0] * shape[1], std));
                }
                writer.addFloats(p + "post_attention_layernorm.weight", DType.F32, new long[] {hidden}, ones(hidden));
            }
            writer.addFloats("model.norm.weight", DType.F32, new long[] {hidden}, ones(hidden));
            if (!c.tieWordEmbeddings()) {
                writer.addFloats("lm_head.weight", DType.F32, new long[] {c.vocabSize(), hidden},
                        normal(random, (long) c.vocabSize() * hidden, std));
            }
        }
        AtomicFiles.copy(sourceDir.resolve("config.json"), outDir.resolve("config.json"));
        for (String file : FullWeights.MODEL_FILES) {
            Path source = sourceDir.resolve(file);
            if (Files.isRegularFile(source)) {
                AtomicFiles.copy(source, outDir.resolve(file));
            }
        }
    }

    /** The Hugging Face {@code [out, in]} shape of projection {@code name} (one of {@link LlamaBlock#LINEAR_NAMES}). */
    static long[] outIn(LlamaConfig c, String name) {
        long hidden = c.hiddenSize();
        return switch (name) {
            case "self_attn.q_proj" -> new long[] {c.queryDim(), hidden};
            case "self_attn.k_proj", "self_attn.v_proj" -> new long[] {c.keyValueDim(), hidden};
            case "self_attn.o_proj" -> new long[] {hidden, c.queryDim()};
            case "mlp.down_proj" -> new long[] {hidden, c.intermediateSize()};
            default -> new long[] {c.intermediateSize(), hidden};
        };
    }

    private static float[] normal(Random random, long n, double std) {
        float[] values = new float[Math.toIntExact(n)];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) (std * random.nextGaussian());
        }
        return values;
    }

    private static float[] ones(int n) {
        float[] values = new float[n];
        java.util.Arrays.fill(values, 1f);
        return values;
    }
}
