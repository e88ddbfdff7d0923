package io.qlora4j.trainer;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.checkpoint.AtomicFiles;
import io.qlora4j.model.checkpoint.ModelFiles;
import io.qlora4j.model.checkpoint.OutputDirectory;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import java.io.IOException;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Map;
import java.util.Random;

/**
 * A freshly initialized model of any family written as a Hugging Face directory, the starting point for
 * pre-training a base model with {@code finetuning_type: full}. Initialization follows transformers: every
 * projection, the embeddings and lm_head drawn from N(0, std^2) ({@code initializer_range}, 0.02), biases 0, every
 * RMSNorm weight the identity of its flavour. Weights are drawn in file order from one seeded generator, so a seed
 * gives one model.
 */
public final class RandomModel {
    private RandomModel() {}

    /**
     * Reads {@code sourceDir/config.json}, writes random float32 weights drawn from {@code seed} with standard
     * deviation {@code std} into {@code outDir/model.safetensors}, and copies config.json and the tokenizer
     * files found beside it. {@code outDir} must not exist or be empty, and appears only once complete
     * ({@link OutputDirectory}), as quantize and export write theirs: writing into an occupied one replaced a model
     * there file by file.
     *
     * @throws ModelException when config.json is missing or invalid, or {@code outDir} is occupied
     */
    public static void write(Path sourceDir, Path outDir, long seed, double std) throws ModelException, IOException {
        DecoderConfig c = ModelFamilies.read(sourceDir.resolve("config.json"));
        Random random = new Random(seed);
        try (OutputDirectory out = OutputDirectory.create(outDir, "OUT_DIR")) {
            try (SafetensorsWriter writer = SafetensorsWriter.builder(out.path()).build()) {
                for (Map.Entry<String, long[]> t : c.tensorShapes().entrySet()) {
                    long[] shape = t.getValue();
                    long n = shape.length == 1 ? shape[0] : shape[0] * shape[1];
                    float[] values = shape.length == 2 ? normal(random, n, std)
                            : t.getKey().endsWith(".bias") ? new float[(int) n] : norm(c, (int) n);
                    writer.addFloats(t.getKey(), DType.F32, shape, values);
                }
            }
            AtomicFiles.copy(sourceDir.resolve("config.json"), out.path().resolve("config.json"));
            ModelFiles.copyCompanionFiles(sourceDir, out.path());
            out.commit();
        }
    }

    private static float[] normal(Random random, long n, double std) {
        float[] values = new float[Math.toIntExact(n)];
        for (int i = 0; i < values.length; i++) {
            values[i] = (float) (std * random.nextGaussian());
        }
        return values;
    }

    /** A norm weight that leaves its input unscaled ({@code 1} for {@code x * w}, {@code 0} for {@code x * (1 + w)}). */
    private static float[] norm(DecoderConfig c, int n) {
        float[] values = new float[n];
        Arrays.fill(values, (float) c.parts().norm().identityWeight());
        return values;
    }
}
