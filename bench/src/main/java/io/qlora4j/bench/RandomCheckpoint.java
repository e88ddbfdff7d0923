package io.qlora4j.bench;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
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
        RandomCheckpoint checkpoint = new RandomCheckpoint(Files.createTempDirectory("qlora4j-bench-"), config, seed);
        try {
            checkpoint.writeTensors(dtype);
            config.write(checkpoint.dir.resolve("config.json"));
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

    private void writeTensors(DType dtype) throws ModelException {
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).optMaxShardBytes(SHARD_BYTES).build()) {
            for (Map.Entry<String, long[]> e : ModelLoader.expectedShapes(config).entrySet()) {
                String name = e.getKey();
                long[] shape = e.getValue();
                double std = shape.length == 1 ? 0 : name.equals("model.embed_tokens.weight") ? 1 : 1 / Math.sqrt(shape[1]);
                put(writer, dtype, name, std, shape);
            }
        }
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
