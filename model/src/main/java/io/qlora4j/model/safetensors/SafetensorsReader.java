package io.qlora4j.model.safetensors;

import io.qlora4j.model.ModelException;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.HalfFloats;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.MappedByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.LinkedHashSet;
import java.util.List;
import java.util.Map;
import java.util.Objects;

/**
 * Reads tensors from a safetensors file or a shard set of any size. Opening parses and
 * validates every header; tensor data is then memory-mapped one range at a time, never loaded
 * as a whole file, and the array readers unmap each range as soon as it is copied so that
 * streaming a checkpoint keeps the resident footprint near one tensor.
 */
public final class SafetensorsReader implements AutoCloseable {

    /** Bytes mapped at once by the array readers; a multiple of every element size. */
    static final int CHUNK_BYTES = 64 << 20;
    /** The largest Java array length the VM reliably allows. */
    private static final int MAX_ARRAY = Integer.MAX_VALUE - 8;
    /** Elements converted and checked finite at a time (64 KB of float32: the block stays in cache for the check). */
    private static final int FINITE_BLOCK = 16384;

    private final Path source;
    private final Map<String, TensorInfo> tensors;
    private final Map<String, String> metadata;
    private final Map<Path, FileChannel> channels;

    private SafetensorsReader(Path source, Map<String, TensorInfo> tensors, Map<String, String> metadata,
            Map<Path, FileChannel> channels) {
        this.source = source;
        this.tensors = tensors;
        this.metadata = metadata;
        this.channels = channels;
    }

    /**
     * Opens a {@code .safetensors} file, a {@code *.safetensors.index.json} shard index, or a
     * directory (its {@code model.safetensors.index.json}, else {@code model.safetensors}, else
     * its only {@code *.safetensors} file), validating every header.
     */
    public static SafetensorsReader open(Path path) throws ModelException {
        if (Files.isDirectory(path)) {
            return open(chooseInDirectory(path));
        }
        if (!Files.isRegularFile(path)) {
            throw new ModelException(path + ": no such safetensors file or directory");
        }
        if (path.getFileName().toString().endsWith(".index.json")) {
            return openIndex(path);
        }
        Map<Path, FileChannel> channels = new LinkedHashMap<>();
        try {
            SafetensorsHeader header = SafetensorsHeader.read(path, openChannel(path, channels));
            Map<String, TensorInfo> byName = new LinkedHashMap<>();
            header.tensors().forEach(t -> byName.put(t.name(), t));
            return new SafetensorsReader(path, byName, header.metadata(), channels);
        } catch (ModelException | RuntimeException e) {
            closeAll(channels.values());
            throw e;
        }
    }

    private static Path chooseInDirectory(Path dir) throws ModelException {
        Path index = dir.resolve(ShardIndex.DEFAULT_INDEX);
        if (Files.isRegularFile(index)) {
            return index;
        }
        Path single = dir.resolve("model.safetensors");
        if (Files.isRegularFile(single)) {
            return single;
        }
        List<Path> found = new ArrayList<>();
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*.safetensors")) {
            files.forEach(found::add);
        } catch (IOException e) {
            throw new ModelException(dir + ": cannot list directory: " + e.getMessage(), e);
        }
        if (found.size() != 1) {
            throw new ModelException(dir + ": expected " + ShardIndex.DEFAULT_INDEX + ", model.safetensors or exactly one"
                    + " *.safetensors file, found " + found.size() + " .safetensors files");
        }
        return found.get(0);
    }

    /** Opens every shard an index names and checks that the index and the shard headers agree. */
    private static SafetensorsReader openIndex(Path indexFile) throws ModelException {
        Map<String, String> weightMap = ShardIndex.readWeightMap(indexFile);
        Path dir = indexFile.toAbsolutePath().getParent();
        Map<Path, FileChannel> channels = new LinkedHashMap<>();
        try {
            Map<String, TensorInfo> found = new LinkedHashMap<>();
            Map<String, String> metadata = null;
            for (String shardName : new LinkedHashSet<>(weightMap.values())) {
                if (shardName.contains("/") || shardName.contains("\\") || shardName.equals("..")) {
                    throw new ModelException(indexFile + ": names shard " + shardName
                            + ", expected a file name in the index's own directory");
                }
                Path shard = dir.resolve(shardName);
                if (!Files.isRegularFile(shard)) {
                    throw new ModelException(indexFile + ": names shard " + shardName + ", which does not exist");
                }
                SafetensorsHeader header = SafetensorsHeader.read(shard, openChannel(shard, channels));
                metadata = metadata == null ? header.metadata() : metadata;
                for (TensorInfo t : header.tensors()) {
                    checkPlacement(indexFile, weightMap, found, t, shardName);
                    found.put(t.name(), t);
                }
            }
            Map<String, TensorInfo> ordered = new LinkedHashMap<>();
            for (Map.Entry<String, String> entry : weightMap.entrySet()) {
                TensorInfo t = found.get(entry.getKey());
                if (t == null) {
                    throw new ModelException(indexFile + ": maps tensor '" + entry.getKey() + "' to " + entry.getValue()
                            + ", which does not contain it");
                }
                ordered.put(t.name(), t);
            }
            return new SafetensorsReader(indexFile, ordered, metadata == null ? Map.of() : metadata, channels);
        } catch (ModelException | RuntimeException e) {
            closeAll(channels.values());
            throw e;
        }
    }

    private static void checkPlacement(Path indexFile, Map<String, String> weightMap, Map<String, TensorInfo> found,
            TensorInfo t, String shardName) throws ModelException {
        TensorInfo earlier = found.get(t.name());
        if (earlier != null) {
            throw new ModelException(indexFile + ": tensor '" + t.name() + "' appears in both "
                    + earlier.file().getFileName() + " and " + shardName);
        }
        String mapped = weightMap.get(t.name());
        if (!shardName.equals(mapped)) {
            throw new ModelException(indexFile + ": tensor '" + t.name() + "' is in " + shardName + " but the index "
                    + (mapped == null ? "does not list it" : "places it in " + mapped));
        }
    }

    private static FileChannel openChannel(Path file, Map<Path, FileChannel> channels) throws ModelException {
        try {
            FileChannel channel = FileChannel.open(file, StandardOpenOption.READ);
            channels.put(file, channel);
            return channel;
        } catch (IOException e) {
            throw new ModelException(file + ": cannot open: " + e.getMessage(), e);
        }
    }

    /** Every tensor, in index order for a shard set and header order for a single file. */
    public List<TensorInfo> tensors() {
        return List.copyOf(tensors.values());
    }

    /** Whether a tensor of this name exists. */
    public boolean contains(String name) {
        return tensors.containsKey(name);
    }

    /** The named tensor's type, shape and location; an unknown name is an error naming it. */
    public TensorInfo info(String name) throws ModelException {
        TensorInfo t = tensors.get(name);
        if (t == null) {
            throw new ModelException(source + ": no tensor named '" + name + "'");
        }
        return t;
    }

    /** The {@code __metadata__} strings (for a shard set, those of the first shard the index names). */
    public Map<String, String> metadata() {
        return metadata;
    }

    /**
     * A read-only little-endian memory-mapped view of the tensor's bytes, for handing to native
     * code without a copy. The mapping lives until the buffer is garbage collected, so bulk
     * streaming should use the array readers, which unmap at once. Tensors over 2 GiB do not
     * fit one buffer: read them with {@link #readFloats}.
     */
    public ByteBuffer bytes(String name) throws ModelException {
        TensorInfo t = info(name);
        if (t.byteSize() > Integer.MAX_VALUE) {
            throw new ModelException(t.file() + ": tensor '" + name + "' is " + t.byteSize()
                    + " bytes, more than one ByteBuffer can hold (2 GiB); read it in pieces with readFloats");
        }
        try {
            return Mappings.map(channel(t), t.begin(), t.byteSize());
        } catch (IOException e) {
            throw new ModelException(t.file() + ": tensor '" + name + "': cannot map: " + e.getMessage(), e);
        }
    }

    /** The tensor as float32: F32 as stored, F16 and BF16 widened exactly, F64 rounded to nearest. */
    public float[] floats(String name) throws ModelException {
        TensorInfo t = requireFloat(info(name));
        float[] values = new float[arrayLength(t, "readFloats")];
        readFloats(name, 0, values, 0, values.length);
        return values;
    }

    /**
     * Converts {@code count} elements starting at element {@code offsetElements} of a floating
     * point tensor into {@code dest[destPos..]}: the way to read tensors too large for one array.
     * Safe to call from several threads at once (until {@link #close}): each call maps, copies and
     * unmaps its own ranges, and the reader's state is fixed when it is opened. Every value read is
     * checked finite: weights, adapters and optimizer states holding a NaN or an infinity are refused
     * by file, tensor and element rather than computed with.
     */
    public void readFloats(String name, long offsetElements, float[] dest, int destPos, int count) throws ModelException {
        TensorInfo t = requireFloat(info(name));
        Objects.checkFromIndexSize(destPos, count, dest.length);
        Objects.checkFromIndexSize(offsetElements, count, t.numel());
        ChunkCopy convert = switch (t.dtype()) {
            case F32 -> (src, at, n) -> src.asFloatBuffer().get(dest, destPos + at, n);
            case F16 -> (src, at, n) -> {
                for (int i = 0; i < n; i++) {
                    dest[destPos + at + i] = HalfFloats.f16ToFloat(src.getShort(2 * i));
                }
            };
            case BF16 -> (src, at, n) -> {
                for (int i = 0; i < n; i++) {
                    dest[destPos + at + i] = HalfFloats.bf16ToFloat(src.getShort(2 * i));
                }
            };
            default -> (src, at, n) -> { // F64, the last type requireFloat lets through
                for (int i = 0; i < n; i++) {
                    dest[destPos + at + i] = (float) src.getDouble(8 * i);
                }
            };
        };
        int size = t.dtype().size();
        // converted and checked a cache-sized block at a time, so the check reads values still in cache
        read(t, offsetElements, count, (src, at, n) -> {
            for (int b = 0; b < n; b += FINITE_BLOCK) {
                int m = Math.min(FINITE_BLOCK, n - b);
                convert.copy(src.slice(b * size, m * size).order(ByteOrder.LITTLE_ENDIAN), at + b, m);
                for (int i = destPos + at + b; i < destPos + at + b + m; i++) {
                    if (!Float.isFinite(dest[i])) {
                        throw new ModelException(t.file() + ": tensor '" + name + "' holds " + dest[i] + " at element "
                                + (offsetElements + i - destPos) + "; expected finite numbers");
                    }
                }
            }
        });
    }

    /**
     * The floating point tensor {@code name} as a {@link FloatSource}: what
     * {@link io.qlora4j.quant.BlockwiseQuantizer#quantize(FloatSource, long[])} reads a weight straight from the
     * file through, from several threads at once.
     */
    public FloatSource<ModelException> floatSource(String name) {
        return (offset, dest, destPos, count) -> readFloats(name, offset, dest, destPos, count);
    }

    /** The raw bytes of a U8, I8 or BOOL tensor. */
    public byte[] u8(String name) throws ModelException {
        TensorInfo t = requireType(info(name), "u8", DType.U8, DType.I8, DType.BOOL);
        byte[] values = new byte[arrayLength(t, null)];
        read(t, 0, values.length, (src, at, n) -> src.get(0, values, at, n));
        return values;
    }

    /** The values of an I32 tensor. */
    public int[] ints(String name) throws ModelException {
        TensorInfo t = requireType(info(name), "ints", DType.I32);
        int[] values = new int[arrayLength(t, null)];
        read(t, 0, values.length, (src, at, n) -> src.asIntBuffer().get(values, at, n));
        return values;
    }

    /** The values of an I64 tensor. */
    public long[] longs(String name) throws ModelException {
        TensorInfo t = requireType(info(name), "longs", DType.I64);
        long[] values = new long[arrayLength(t, null)];
        read(t, 0, values.length, (src, at, n) -> src.asLongBuffer().get(values, at, n));
        return values;
    }

    /** Receives a tensor's bytes one mapped chunk at a time; the chunk is unmapped when the call returns. */
    @FunctionalInterface
    interface ByteSink {
        void accept(ByteBuffer chunk) throws IOException;
    }

    /**
     * Passes the tensor's bytes to {@code sink} in order, {@code chunkBytes} at a time, unmapping each chunk as
     * soon as the sink returns, so copying a checkpoint keeps its resident footprint near one chunk.
     */
    void forEachChunk(TensorInfo t, long chunkBytes, ByteSink sink) throws IOException {
        FileChannel channel = channel(t);
        for (long done = 0; done < t.byteSize(); ) {
            long n = Math.min(chunkBytes, t.byteSize() - done);
            MappedByteBuffer chunk = Mappings.map(channel, t.begin() + done, n);
            try {
                sink.accept(chunk);
            } finally {
                Mappings.release(chunk);
            }
            done += n;
        }
    }

    /** Closes the shard files; buffers returned by {@link #bytes} stay valid. */
    @Override
    public void close() {
        closeAll(channels.values());
    }

    /** Copies one mapped chunk: {@code count} elements at the buffer's start, to output index {@code at}. */
    @FunctionalInterface
    private interface ChunkCopy {
        void copy(ByteBuffer chunk, int at, int count) throws ModelException;
    }

    /** Maps the requested elements a chunk at a time, copies each out, and unmaps it immediately. */
    private void read(TensorInfo t, long firstElement, int count, ChunkCopy copy) throws ModelException {
        int size = t.dtype().size();
        int perChunk = CHUNK_BYTES / size;
        FileChannel channel = channel(t);
        for (int done = 0; done < count; ) {
            int n = Math.min(perChunk, count - done);
            MappedByteBuffer chunk;
            try {
                chunk = Mappings.map(channel, t.begin() + (firstElement + done) * size, (long) n * size);
            } catch (IOException e) {
                throw new ModelException(t.file() + ": tensor '" + t.name() + "': cannot map: " + e.getMessage(), e);
            }
            try {
                copy.copy(chunk, done, n);
            } finally {
                Mappings.release(chunk);
            }
            done += n;
        }
    }

    private FileChannel channel(TensorInfo t) {
        return channels.get(t.file());
    }

    private static TensorInfo requireFloat(TensorInfo t) throws ModelException {
        return requireType(t, "floats", DType.F32, DType.F16, DType.BF16, DType.F64);
    }

    private static TensorInfo requireType(TensorInfo t, String reader, DType... accepted) throws ModelException {
        for (DType d : accepted) {
            if (t.dtype() == d) {
                return t;
            }
        }
        throw new ModelException(t.file() + ": tensor '" + t.name() + "' is " + t.dtype() + "; " + reader + "() reads "
                + Arrays.toString(accepted));
    }

    private static int arrayLength(TensorInfo t, String chunkedReader) throws ModelException {
        if (t.numel() > MAX_ARRAY) {
            throw new ModelException(t.file() + ": tensor '" + t.name() + "' has " + t.numel()
                    + " elements, too many for one Java array" + (chunkedReader == null ? "" : "; read it in pieces with " + chunkedReader));
        }
        return (int) t.numel();
    }

    private static void closeAll(Iterable<FileChannel> channels) {
        for (FileChannel channel : channels) {
            try {
                channel.close();
            } catch (IOException ignored) {
                // read-only channel: nothing was written, nothing can be lost
            }
        }
    }
}
