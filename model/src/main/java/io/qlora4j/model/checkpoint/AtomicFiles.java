package io.qlora4j.model.checkpoint;

import java.io.IOException;
import java.nio.channels.FileChannel;
import java.nio.charset.StandardCharsets;
import java.nio.file.AtomicMoveNotSupportedException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.nio.file.StandardOpenOption;

/**
 * Files that appear whole or not at all: the bytes go to a hidden temp name in the same directory,
 * are forced to disk, and are renamed onto the final name in one step, after which the directory
 * itself is forced so that the rename survives a power loss too. A crash leaves at most a
 * {@code .*.tmp} file, which readers ignore. Used for every small file qlora4j writes beside its
 * safetensors (configs, trainer state, metrics, plots).
 */
public final class AtomicFiles {
    /** The suffix of every temp file, for recognising leftovers. */
    public static final String TEMP_SUFFIX = ".tmp";

    private AtomicFiles() {}

    /** Writes {@code text} as UTF-8 to {@code target} through a temp file and a rename. */
    public static void write(Path target, String text) throws IOException {
        write(target, text.getBytes(StandardCharsets.UTF_8));
    }

    /** Writes {@code bytes} to {@code target} through a temp file and a rename. */
    public static void write(Path target, byte[] bytes) throws IOException {
        Path temp = tempFor(target);
        try {
            Files.write(temp, bytes);
            force(temp);
            move(temp, target);
            syncDirectory(target.toAbsolutePath().getParent());
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    /** Copies {@code source} to {@code target} through a temp file and a rename. */
    public static void copy(Path source, Path target) throws IOException {
        Path temp = tempFor(target);
        try {
            Files.copy(source, temp, StandardCopyOption.REPLACE_EXISTING);
            force(temp);
            move(temp, target);
            syncDirectory(target.toAbsolutePath().getParent());
        } finally {
            Files.deleteIfExists(temp);
        }
    }

    /** Renames {@code source} onto {@code target} atomically (replacing it where the file system allows). */
    public static void move(Path source, Path target) throws IOException {
        try {
            Files.move(source, target, StandardCopyOption.ATOMIC_MOVE, StandardCopyOption.REPLACE_EXISTING);
        } catch (AtomicMoveNotSupportedException e) {
            Files.move(source, target, StandardCopyOption.REPLACE_EXISTING);
        }
    }

    /** Forces a written file's bytes to the storage device. */
    public static void force(Path file) throws IOException {
        try (FileChannel channel = FileChannel.open(file, StandardOpenOption.WRITE)) {
            channel.force(true);
        }
    }

    /**
     * Forces a directory's entries to the storage device, so that files created or renamed into it
     * survive a power loss (POSIX: fsync on the directory). Where the platform cannot open a directory
     * for that (Windows), this does nothing: its file systems journal renames themselves.
     */
    public static void syncDirectory(Path dir) throws IOException {
        FileChannel channel;
        try {
            channel = FileChannel.open(dir, StandardOpenOption.READ);
        } catch (IOException e) {
            if (Files.isDirectory(dir)) {
                return; // the platform cannot open directories
            }
            throw e;
        }
        try (channel) {
            channel.force(true);
        }
    }

    private static Path tempFor(Path target) {
        return target.resolveSibling("." + target.getFileName() + "." + ProcessHandle.current().pid() + TEMP_SUFFIX);
    }
}
