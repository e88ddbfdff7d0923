package io.qlora4j.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.format.AqlmFormat;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.quant.HalfFloats;
import io.qlora4j.quant.aqlm.AqlmScheme;
import io.qlora4j.quant.aqlm.AqlmTensor;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.Comparator;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * A Hugging Face directory with random weights in a fresh temporary directory, deleted by
 * {@link #close}. Tensors are generated and streamed to disk one at a time (2 GB shards), so the writer
 * holds at most one tensor's floats. Matrices are uniform with standard deviation {@code 1/sqrt(in)}
 * (activations stay in range, no denormals), embeddings have unit variance, norm weights (and biases, when
 * the config has them) are 1.
 */
final class RandomCheckpoint implements AutoCloseable {
    /** Hugging Face's {@code max_shard_size="2GB"}. */
    private static final long SHARD_BYTES = 2_000_000_000L;

    private final Path dir;
    private final DecoderConfig config;
    private final SplittableRandom random;

    private RandomCheckpoint(Path dir, DecoderConfig config, long seed) {
        this.dir = dir;
        this.config = config;
        this.random = new SplittableRandom(seed);
    }

    /** Writes {@code config.json} and every weight the config calls for, stored as {@code dtype}. */
    static RandomCheckpoint write(DecoderConfig config, DType dtype, long seed) throws IOException, ModelException {
        return write(config, dtype, seed, null);
    }

    /**
     * The same model pre-quantized to AQLM {@code scheme} in the Hugging Face layout: every block projection a random
     * AQLM tensor (uniform codes, uniform fp16 codebook entries scaled so the decoded weight has the float one's
     * standard deviation, scales 1), the rest bf16, and config.json's {@code quantization_config}. For timing: what the
     * codes encode is noise.
     */
    static RandomCheckpoint writeAqlm(DecoderConfig config, AqlmScheme scheme, long seed)
            throws IOException, ModelException {
        return write(config, DType.BF16, seed, scheme);
    }

    private static RandomCheckpoint write(DecoderConfig config, DType dtype, long seed, AqlmScheme aqlm)
            throws IOException, ModelException {
        RandomCheckpoint checkpoint = new RandomCheckpoint(Files.createTempDirectory("qlora4j-bench-"), config, seed);
        try {
            checkpoint.writeTensors(dtype, aqlm);
            ObjectNode json = config.toJson();
            if (aqlm != null) {
                json.set("quantization_config", new AqlmFormat(aqlm).quantizationConfig("bfloat16"));
            }
            Files.writeString(checkpoint.dir.resolve("config.json"),
                    new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(json) + "\n");
            return checkpoint;
        } catch (IOException | ModelException | RuntimeException e) {
            checkpoint.close();
            throw e;
        }
    }

    /** The checkpoint directory. */
    Path dir() {
        return dir;
    }

    /** Bytes of all files in the directory. */
    long diskBytes() throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            long total = 0;
            for (Path f : (Iterable<Path>) files::iterator) {
                total += Files.size(f);
            }
            return total;
        }
    }

    /** The number of elements of a tensor of this shape. */
    static long numel(long[] shape) {
        return Arrays.stream(shape).reduce(1, Math::multiplyExact);
    }

    /** Deletes the directory and everything in it. */
    @Override
    public void close() throws IOException {
        deleteTree(dir);
    }

    /** Deletes {@code root} and everything under it. */
    static void deleteTree(Path root) throws IOException {
        try (Stream<Path> paths = Files.walk(root)) {
            for (Path p : (Iterable<Path>) paths.sorted(Comparator.reverseOrder())::iterator) {
                Files.delete(p);
            }
        }
    }

    private void writeTensors(DType dtype, AqlmScheme aqlm) throws ModelException {
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).optMaxShardBytes(SHARD_BYTES).build()) {
            for (Map.Entry<String, long[]> e : ModelLoader.expectedShapes(config).entrySet()) {
                String name = e.getKey();
                long[] shape = e.getValue();
                double std = shape.length == 1 ? 0 : name.equals("model.embed_tokens.weight") ? 1 : 1 / Math.sqrt(shape[1]);
                if (aqlm != null && shape.length == 2 && name.startsWith("model.layers.")) {
                    AqlmFormat.stored(randomAqlm(aqlm, shape, std)).write(writer,
                            name.substring(0, name.length() - ".weight".length()), null);
                } else {
                    put(writer, dtype, name, std, shape);
                }
            }
        }
    }

    /** Uniform codes; fp16 codebook entries of standard deviation {@code std / sqrt(K)}, so their sum has {@code std}. */
    private AqlmTensor randomAqlm(AqlmScheme scheme, long[] shape, double std) {
        long groups = shape[0] / scheme.outGroupSize() * (shape[1] / scheme.inGroupSize());
        int[] codes = new int[Math.toIntExact(groups * scheme.numCodebooks())];
        for (int i = 0; i < codes.length; i++) {
            codes[i] = random.nextInt(scheme.codebookSize());
        }
        float[] codebooks = new float[scheme.numCodebooks() * scheme.codebookSize() * scheme.groupSize()];
        double halfWidth = std / Math.sqrt(scheme.numCodebooks()) * Math.sqrt(3);
        for (int i = 0; i < codebooks.length; i++) {
            codebooks[i] = HalfFloats.f16ToFloat(HalfFloats.floatToF16((float) ((2 * random.nextDouble() - 1) * halfWidth)));
        }
        float[] scales = new float[Math.toIntExact(shape[0] / scheme.outGroupSize())];
        Arrays.fill(scales, 1f);
        return new AqlmTensor(scheme, shape[0], shape[1], codes, codebooks, scales);
    }

    /** One tensor: uniform values of standard deviation {@code std}, or all ones when std is 0 (a norm weight). */
    private void put(SafetensorsWriter writer, DType dtype, String name, double std, long[] shape)
            throws ModelException {
        float[] values = new float[Math.toIntExact(numel(shape))];
        double halfWidth = std * Math.sqrt(3);
        for (int i = 0; i < values.length; i++) {
            values[i] = std == 0 ? 1f : (float) ((2 * random.nextDouble() - 1) * halfWidth);
        }
        writer.addFloats(name, dtype, shape, values);
    }
}
