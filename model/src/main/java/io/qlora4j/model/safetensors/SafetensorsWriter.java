package io.qlora4j.model.safetensors;

import io.qlora4j.model.ModelException;
import io.qlora4j.quant.HalfFloats;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.SortedMap;
import java.util.TreeMap;

/**
 * Writes tensors as a safetensors file, or as Hugging Face shards plus an index when a shard
 * budget is set, streaming each tensor to disk as it arrives so memory stays near one tensor.
 * Files appear under their final names only by atomic rename when {@link #close} finishes; on
 * {@link #abort} or after a failed write, closing deletes every temp file instead.
 */
public final class SafetensorsWriter implements AutoCloseable {

    /** Bytes converted at a time by {@link #addFloats}. */
    private static final int ENCODE_CHUNK = 1 << 20;

    private final Path dir;
    private final String baseName;
    private final Map<String, String> metadata;
    private final long maxShardBytes;
    private final List<Path> finishedShards = new ArrayList<>();
    private final SortedMap<String, Integer> shardOf = new TreeMap<>();
    private ShardWriter current;
    private long totalBytes;
    private boolean closed;
    private boolean failed;

    private SafetensorsWriter(Builder builder) {
        this.dir = builder.outputDir;
        this.baseName = builder.baseName;
        this.metadata = builder.metadata;
        this.maxShardBytes = builder.maxShardBytes;
    }

    /** Starts a builder writing into {@code outputDir} (created if missing). */
    public static Builder builder(Path outputDir) {
        return new Builder(outputDir);
    }

    /**
     * Adds a tensor whose little-endian bytes are {@code data}'s remaining bytes; they must number
     * exactly {@code numel * dtype.size()}. The buffer's position is left unchanged.
     */
    public void add(String name, DType dtype, long[] shape, ByteBuffer data) throws ModelException {
        long size = checkNew(name, dtype, shape);
        if (data.remaining() != size) {
            throw new IllegalArgumentException("tensor '" + name + "': shape " + Arrays.toString(shape) + " of " + dtype
                    + " needs " + size + " bytes but the buffer has " + data.remaining());
        }
        write(name, dtype, shape, size, shard -> shard.append(data.duplicate()));
    }

    /**
     * Adds the tensor {@code name} of {@code reader} byte for byte under the same name, dtype and shape, mapping it
     * a chunk at a time and unmapping each at once (a mapping from {@link SafetensorsReader#bytes} stays resident
     * until a garbage collection), so copying a whole checkpoint keeps memory near one chunk.
     */
    public void addFrom(SafetensorsReader reader, String name) throws ModelException {
        addFrom(reader, name, SafetensorsReader.CHUNK_BYTES);
    }

    /** {@link #addFrom(SafetensorsReader, String)} with an explicit chunk size, for tests of the chunked path. */
    void addFrom(SafetensorsReader reader, String name, long chunkBytes) throws ModelException {
        TensorInfo t = reader.info(name);
        long size = checkNew(name, t.dtype(), t.shape());
        write(name, t.dtype(), t.shape(), size, shard -> reader.forEachChunk(t, chunkBytes, shard::append));
    }

    /** Adds a U8, I8 or BOOL tensor (or any type given as little-endian bytes) from an array. */
    public void addBytes(String name, DType dtype, long[] shape, byte[] data) throws ModelException {
        add(name, dtype, shape, ByteBuffer.wrap(data));
    }

    /** Adds float32 values stored as {@code target}: F32 as is, F16 or BF16 rounded to nearest even. */
    public void addFloats(String name, DType target, long[] shape, float[] values) throws ModelException {
        if (target != DType.F32 && target != DType.F16 && target != DType.BF16) {
            throw new IllegalArgumentException("tensor '" + name + "': addFloats writes F32, F16 or BF16, not " + target);
        }
        long size = checkNew(name, target, shape);
        if (size / target.size() != values.length) {
            throw new IllegalArgumentException("tensor '" + name + "': shape " + Arrays.toString(shape) + " has "
                    + size / target.size() + " elements but " + values.length + " values were given");
        }
        write(name, target, shape, size, shard -> {
            ByteBuffer chunk = ByteBuffer.allocate((int) Math.min(size, ENCODE_CHUNK)).order(ByteOrder.LITTLE_ENDIAN);
            for (int i = 0; i < values.length; ) {
                chunk.clear();
                for (; i < values.length && chunk.hasRemaining(); i++) {
                    switch (target) {
                        case F32 -> chunk.putFloat(values[i]);
                        case F16 -> chunk.putShort(HalfFloats.floatToF16(values[i]));
                        default -> chunk.putShort(HalfFloats.floatToBf16(values[i]));
                    }
                }
                shard.append(chunk.flip());
            }
        });
    }

    /** Tensor bytes added so far, over all shards (what the index records as {@code total_size}). */
    public long totalBytes() {
        return totalBytes;
    }

    /** Gives up: deletes every temp file; nothing appears under a final name. Closing afterwards does nothing. */
    public void abort() {
        if (!closed) {
            closed = true;
            discardAll();
        }
    }

    /**
     * Finishes: writes the last shard, renames every shard into place and, for several shards,
     * writes the index. After {@link #abort} or a failed write it only deletes the temp files.
     */
    @Override
    public void close() throws ModelException {
        if (closed) {
            return;
        }
        if (failed) {
            abort();
            return;
        }
        closed = true;
        try {
            if (current == null) {
                current = ShardWriter.create(dir, baseName);
            }
            finishedShards.add(current.finish(metadata));
            current = null;
            publishAll();
        } catch (IOException e) {
            discardAll();
            throw new ModelException(dir + ": cannot finish writing " + baseName + ": " + e.getMessage(), e);
        }
    }

    private void publishAll() throws IOException {
        int n = finishedShards.size();
        if (n == 1) {
            publish(finishedShards.get(0), baseName + ".safetensors");
            return;
        }
        SortedMap<String, String> weightMap = new TreeMap<>();
        shardOf.forEach((name, k) -> weightMap.put(name, ShardIndex.shardName(baseName, k, n)));
        Path index = ShardWriter.tempFile(dir, baseName);
        finishedShards.add(index);
        try (FileChannel out = FileChannel.open(index, StandardOpenOption.WRITE)) {
            ShardWriter.writeFully(out, ByteBuffer.wrap(ShardIndex.toJson(totalBytes, weightMap)));
            out.force(true);
        }
        for (int k = 1; k <= n; k++) {
            publish(finishedShards.get(k - 1), ShardIndex.shardName(baseName, k, n));
        }
        publish(index, baseName + ShardIndex.INDEX_SUFFIX);
    }

    private void publish(Path temp, String finalName) throws IOException {
        Files.move(temp, dir.resolve(finalName), StandardCopyOption.ATOMIC_MOVE);
    }

    /** What a tensor's bytes are written by; it may append several times. */
    @FunctionalInterface
    private interface Payload {
        void writeTo(ShardWriter shard) throws IOException;
    }

    private void write(String name, DType dtype, long[] shape, long size, Payload payload) throws ModelException {
        try {
            if (current != null && !current.isEmpty() && current.bytes() + size > maxShardBytes) {
                finishedShards.add(current.finish(metadata));
                current = null;
            }
            if (current == null) {
                current = ShardWriter.create(dir, baseName);
            }
            long begin = current.bytes();
            payload.writeTo(current);
            current.record(name, dtype, shape, begin);
        } catch (IOException e) {
            failed = true;
            throw new ModelException(dir + ": cannot write tensor '" + name + "': " + e.getMessage(), e);
        }
        shardOf.put(name, finishedShards.size() + 1);
        totalBytes += size;
    }

    /** Validates a new tensor's name and shape and returns its byte size. */
    private long checkNew(String name, DType dtype, long[] shape) {
        if (closed || failed) {
            throw new IllegalStateException("writer for " + dir.resolve(baseName) + " is " + (closed ? "closed" : "failed; close it"));
        }
        if (name.equals(SafetensorsHeader.METADATA_KEY) || shardOf.containsKey(name)) {
            throw new IllegalArgumentException("tensor name '" + name + "' is reserved or already written");
        }
        for (long d : shape) {
            if (d < 0) {
                throw new IllegalArgumentException("tensor '" + name + "': negative dimension in shape " + Arrays.toString(shape));
            }
        }
        return Math.multiplyExact(TensorInfo.numel(shape), dtype.size());
    }

    private void discardAll() {
        if (current != null) {
            current.discard();
            current = null;
        }
        for (Path temp : finishedShards) {
            try {
                Files.deleteIfExists(temp);
            } catch (IOException ignored) {
                // a leftover hidden .tmp file is harmless and carries no final name
            }
        }
        finishedShards.clear();
    }

    /** Settings of a {@link SafetensorsWriter}; DJL-style {@code opt*} setters. */
    public static final class Builder {
        private final Path outputDir;
        private String baseName = "model";
        private Map<String, String> metadata = Map.of("format", "pt");
        private long maxShardBytes = Long.MAX_VALUE;

        private Builder(Path outputDir) {
            this.outputDir = outputDir;
        }

        /** File name stem: {@code model} gives {@code model.safetensors} or {@code model-00001-of-00003.safetensors}. */
        public Builder optBaseName(String baseName) {
            if (baseName.isEmpty() || baseName.contains("/") || baseName.contains("\\")) {
                throw new IllegalArgumentException("base name must be a plain file name stem, got '" + baseName + "'");
            }
            this.baseName = baseName;
            return this;
        }

        /** The {@code __metadata__} strings written into every shard (default {@code {"format": "pt"}}; empty omits it). */
        public Builder optMetadata(Map<String, String> metadata) {
            this.metadata = Collections.unmodifiableMap(new LinkedHashMap<>(metadata));
            return this;
        }

        /** Tensor bytes per shard before a new shard starts (default unlimited: one file). */
        public Builder optMaxShardBytes(long maxShardBytes) {
            if (maxShardBytes <= 0) {
                throw new IllegalArgumentException("maxShardBytes must be positive, got " + maxShardBytes);
            }
            this.maxShardBytes = maxShardBytes;
            return this;
        }

        /** Creates the output directory if needed and returns the writer. */
        public SafetensorsWriter build() throws ModelException {
            try {
                Files.createDirectories(outputDir);
            } catch (IOException e) {
                throw new ModelException(outputDir + ": cannot create output directory: " + e.getMessage(), e);
            }
            return new SafetensorsWriter(this);
        }
    }
}
