package io.qlora4j.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.format.AqlmFormat;
import io.qlora4j.model.format.AwqFormat;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.GptqFormat;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.quant.HalfFloats;
import io.qlora4j.quant.aqlm.AqlmScheme;
import io.qlora4j.quant.aqlm.AqlmTensor;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
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
    /** {@code E[(q - 8)^2]} for uniform 4-bit codes {@code q}: {@code (16^2 - 1) / 12 + (7.5 - 8)^2} (GPTQ's zeros). */
    private static final double CODES_MINUS_EIGHT = 21.5;
    /** {@code E[(q - z)^2]} for independent uniform 4-bit codes and zeros: {@code 2 (16^2 - 1) / 12} (AWQ's). */
    private static final double CODES_MINUS_CODES = 42.5;

    private final Path dir;
    private final DecoderConfig config;
    private final SplittableRandom random;
    /** The format config.json's quantization_config names, as a loader reads it; null for a float checkpoint. */
    private BaseFormat stored;

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
     * The same model pre-quantized in {@code format} (AQLM, GPTQ or AWQ) in the Hugging Face layout: every block
     * projection random codes in that format's tensors, scaled so the decoded weight has about the float one's standard
     * deviation, the rest bf16, and config.json's {@code quantization_config}. For timing: what the codes encode is
     * noise. AQLM: uniform codes, uniform fp16 codebook entries, scales 1. GPTQ (symmetric, the {@code gptq} form):
     * uniform codes, zeros 8, one fp16 scale, and the group of each column in order or, with act-order, from a random
     * permutation. AWQ: uniform codes and zeros, one fp16 scale.
     */
    static RandomCheckpoint writePrequantized(DecoderConfig config, BaseFormat format, long seed)
            throws IOException, ModelException {
        if (!(format instanceof AqlmFormat || format instanceof GptqFormat g && g.bits() == 4 && g.sym() && g.v1()
                || format instanceof AwqFormat)) {
            throw new IllegalArgumentException("no random checkpoint in " + format.describe());
        }
        return write(config, DType.BF16, seed, format);
    }

    private static RandomCheckpoint write(DecoderConfig config, DType dtype, long seed, BaseFormat prequantized)
            throws IOException, ModelException {
        RandomCheckpoint checkpoint = new RandomCheckpoint(Files.createTempDirectory("qlora4j-bench-"), config, seed);
        try {
            checkpoint.writeTensors(dtype, prequantized);
            ObjectNode json = config.toJson();
            if (prequantized != null) {
                json.set("quantization_config", prequantized.quantizationConfig("bfloat16"));
            }
            Files.writeString(checkpoint.dir.resolve("config.json"),
                    new ObjectMapper().writerWithDefaultPrettyPrinter().writeValueAsString(json) + "\n");
            checkpoint.stored = BaseFormats.stored(checkpoint.dir);
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

    /** The format its block projections are stored in, read back from config.json; null for a float checkpoint. */
    BaseFormat stored() {
        return stored;
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

    private void writeTensors(DType dtype, BaseFormat prequantized) throws ModelException {
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).optMaxShardBytes(SHARD_BYTES).build()) {
            for (Map.Entry<String, long[]> e : ModelLoader.expectedShapes(config).entrySet()) {
                String name = e.getKey();
                long[] shape = e.getValue();
                double std = shape.length == 1 ? 0 : name.equals("model.embed_tokens.weight") ? 1 : 1 / Math.sqrt(shape[1]);
                if (prequantized == null || shape.length != 2 || !name.startsWith("model.layers.")) {
                    put(writer, dtype, name, std, shape);
                    continue;
                }
                String prefix = name.substring(0, name.length() - ".weight".length());
                if (prequantized instanceof AqlmFormat aqlm) {
                    AqlmFormat.stored(randomAqlm(aqlm.scheme(), shape, std)).write(writer, prefix, null);
                } else if (prequantized instanceof GptqFormat gptq) {
                    putGptq(writer, gptq, prefix, shape, std);
                } else {
                    putAwq(writer, (AwqFormat) prequantized, prefix, shape, std);
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
            codebooks[i] = HalfFloats.roundToF16((float) ((2 * random.nextDouble() - 1) * halfWidth));
        }
        float[] scales = new float[Math.toIntExact(shape[0] / scheme.outGroupSize())];
        Arrays.fill(scales, 1f);
        return new AqlmTensor(scheme, shape[0], shape[1], codes, codebooks, scales);
    }

    /**
     * GPTQ 4-bit, symmetric, zeros stored minus one: random qweight words {@code [in / 8, out]}, every stored zero 7,
     * one fp16 scale giving {@code s * (q - 8)} standard deviation {@code std}, and g_idx.
     */
    private void putGptq(SafetensorsWriter writer, GptqFormat format, String prefix, long[] shape, double std)
            throws ModelException {
        int out = Math.toIntExact(shape[0]);
        int in = Math.toIntExact(shape[1]);
        int groups = in / format.groupSize();
        byte[] zeros = new byte[groups * out / 2];
        Arrays.fill(zeros, (byte) 0x77);
        int[] order = new int[in];
        for (int i = 0; i < in; i++) {
            order[i] = i;
        }
        for (int i = in - 1; format.descAct() && i > 0; i--) {
            int j = random.nextInt(i + 1);
            int t = order[i];
            order[i] = order[j];
            order[j] = t;
        }
        ByteBuffer groupIndex = ByteBuffer.allocate(4 * in).order(ByteOrder.LITTLE_ENDIAN);
        for (int position = 0; position < in; position++) {
            groupIndex.putInt(4 * order[position], position / format.groupSize());
        }
        writer.addBytes(prefix + ".qweight", DType.I32, new long[] {in / 8, out}, randomBytes(in * out / 2));
        writer.addBytes(prefix + ".qzeros", DType.I32, new long[] {groups, out / 8}, zeros);
        writer.addFloats(prefix + ".scales", DType.F16, new long[] {groups, out},
                fourBitScales(groups * out, std, CODES_MINUS_EIGHT));
        writer.addBytes(prefix + ".g_idx", DType.I32, new long[] {in}, groupIndex.array());
    }

    /**
     * AWQ gemm: random qweight {@code [in, out / 8]} and qzeros {@code [groups, out / 8]} words, and one fp16 scale
     * that gives {@code s * (q - z)} standard deviation {@code std}.
     */
    private void putAwq(SafetensorsWriter writer, AwqFormat format, String prefix, long[] shape, double std)
            throws ModelException {
        int out = Math.toIntExact(shape[0]);
        int in = Math.toIntExact(shape[1]);
        int groups = in / format.groupSize();
        writer.addBytes(prefix + ".qweight", DType.I32, new long[] {in, out / 8}, randomBytes(in * out / 2));
        writer.addBytes(prefix + ".qzeros", DType.I32, new long[] {groups, out / 8}, randomBytes(groups * out / 2));
        writer.addFloats(prefix + ".scales", DType.F16, new long[] {groups, out},
                fourBitScales(groups * out, std, CODES_MINUS_CODES));
    }

    private byte[] randomBytes(int count) {
        byte[] bytes = new byte[count];
        random.nextBytes(bytes);
        return bytes;
    }

    /**
     * {@code count} copies of the fp16 scale that gives 4-bit codes' differences {@code q - z} of mean square
     * {@code meanSquare} ({@link #CODES_MINUS_EIGHT}, {@link #CODES_MINUS_CODES}) standard deviation {@code std}.
     */
    private static float[] fourBitScales(int count, double std, double meanSquare) {
        float[] scales = new float[count];
        Arrays.fill(scales, HalfFloats.roundToF16((float) (std / Math.sqrt(meanSquare))));
        return scales;
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
