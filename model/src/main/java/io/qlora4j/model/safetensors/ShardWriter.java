package io.qlora4j.model.safetensors;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.channels.FileChannel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Arrays;
import java.util.Map;

/**
 * One shard being written: tensor data streams into a hidden temp file as it arrives, and
 * {@link #finish} writes a second hidden temp file holding the header followed by that data,
 * ready to be renamed into place once the shard count (and so the final name) is known.
 */
final class ShardWriter {

    private static final ObjectMapper JSON = new ObjectMapper();

    private final Path dir;
    private final String baseName;
    private final Path dataFile;
    private final FileChannel data;
    private final ObjectNode tensors = JSON.createObjectNode();
    private long bytes;

    private ShardWriter(Path dir, String baseName, Path dataFile, FileChannel data) {
        this.dir = dir;
        this.baseName = baseName;
        this.dataFile = dataFile;
        this.data = data;
    }

    /** Starts an empty shard whose data goes to a new hidden temp file in {@code dir}. */
    static ShardWriter create(Path dir, String baseName) throws IOException {
        Path dataFile = tempFile(dir, baseName);
        return new ShardWriter(dir, baseName, dataFile, FileChannel.open(dataFile, StandardOpenOption.READ, StandardOpenOption.WRITE));
    }

    /** A new hidden, uniquely named file in {@code dir}, never matching {@code *.safetensors}. */
    static Path tempFile(Path dir, String baseName) throws IOException {
        return SharedFileModes.apply(Files.createTempFile(dir, "." + baseName + ".", ".tmp"));
    }

    /** Tensor bytes written so far. */
    long bytes() {
        return bytes;
    }

    /** Whether no tensor has been recorded yet. */
    boolean isEmpty() {
        return tensors.isEmpty();
    }

    /** Appends the buffer's remaining bytes to the shard's data. */
    void append(ByteBuffer source) throws IOException {
        bytes += writeFully(data, source);
    }

    /** Records a tensor whose data was appended from data offset {@code begin} to the current end. */
    void record(String name, DType dtype, long[] shape, long begin) {
        ObjectNode entry = tensors.putObject(name);
        entry.put("dtype", dtype.name());
        ArrayNode dims = entry.putArray("shape");
        Arrays.stream(shape).forEach(dims::add);
        entry.putArray("data_offsets").add(begin).add(bytes);
    }

    /**
     * Writes header and data to a new hidden temp file, flushed to disk, and deletes the data
     * file. The header is {@code __metadata__} first, then the tensors in the order they came,
     * padded with spaces so that the data starts at a multiple of 8 bytes.
     */
    Path finish(Map<String, String> metadata) throws IOException {
        ObjectNode root = JSON.createObjectNode();
        if (!metadata.isEmpty()) {
            ObjectNode meta = root.putObject(SafetensorsHeader.METADATA_KEY);
            metadata.forEach(meta::put);
        }
        root.setAll(tensors);
        byte[] json = JSON.writeValueAsBytes(root);
        int padded = json.length + (8 - (8 + json.length) % 8) % 8;
        ByteBuffer head = ByteBuffer.allocate(8 + padded).order(ByteOrder.LITTLE_ENDIAN);
        head.putLong(padded).put(json);
        while (head.hasRemaining()) {
            head.put((byte) ' ');
        }
        Path file = tempFile(dir, baseName);
        try (FileChannel out = FileChannel.open(file, StandardOpenOption.WRITE)) {
            writeFully(out, head.flip());
            for (long done = 0; done < bytes; ) {
                done += data.transferTo(done, bytes - done, out);
            }
            out.force(true);
        } catch (IOException | RuntimeException e) {
            Files.deleteIfExists(file);
            throw e;
        }
        discard();
        return file;
    }

    /** Closes and deletes the data temp file, best effort. */
    void discard() {
        try {
            data.close();
            Files.deleteIfExists(dataFile);
        } catch (IOException ignored) {
            // a leftover hidden .tmp file is harmless and carries no final name
        }
    }

    /** Writes all remaining bytes of {@code source} at the channel's position; returns how many. */
    static int writeFully(FileChannel channel, ByteBuffer source) throws IOException {
        int count = source.remaining();
        while (source.hasRemaining()) {
            channel.write(source);
        }
        return count;
    }
}
