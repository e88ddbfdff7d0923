package io.qlora4j.trainer;

import io.qlora4j.trainer.config.ConfigException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.channels.FileChannel;
import java.nio.channels.FileLock;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.nio.file.attribute.BasicFileAttributes;
import java.time.Instant;
import java.time.temporal.ChronoUnit;
import java.util.Set;
import java.util.concurrent.ConcurrentHashMap;

/**
 * An exclusive hold on a run's {@code output_dir}: an operating-system lock ({@link FileChannel#tryLock}) on
 * {@value #FILE} inside it, so two runs (two fresh starts, two resumes, or one of each) never write one
 * directory at once. The lock belongs to the process: when it dies, killed or not, the system drops it, so a
 * stale lock file never blocks the next run. The file holds the holder's pid, host and start time for the
 * refusal message.
 *
 * <p>POSIX drops a process's lock when any of its descriptors of the file is closed, so the holder never opens
 * the file a second time, and a second claim from the same JVM is refused from a registry before it opens one.
 */
final class DirectoryLock implements AutoCloseable {
    /** The lock file's name inside the directory. */
    static final String FILE = ".qlora4j.lock";

    private static final Set<Path> HELD = ConcurrentHashMap.newKeySet();
    private static final int ATTEMPTS = 5;

    private final Path dir;
    private final Path file;
    private final FileChannel channel;

    private DirectoryLock(Path dir, Path file, FileChannel channel) {
        this.dir = dir;
        this.file = file;
        this.channel = channel;
    }

    /**
     * Locks the existing directory {@code dir} for this process.
     *
     * @throws ConfigException naming the holder when another run (in this or another process) holds it
     */
    static DirectoryLock acquire(Path dir) throws ConfigException, IOException {
        Path real = dir.toRealPath();
        if (!HELD.add(real)) {
            throw inUse(dir, "this process");
        }
        try {
            for (int attempt = 0; attempt < ATTEMPTS; attempt++) {
                DirectoryLock lock = tryOnce(dir, real);
                if (lock != null) {
                    return lock;
                }
            }
            throw new IOException(real.resolve(FILE) + ": the lock file kept being replaced while locking it");
        } catch (ConfigException | IOException | RuntimeException e) {
            HELD.remove(real);
            throw e;
        }
    }

    /** One try: the lock, or null when the file was deleted or replaced under us (a holder cleaning up). */
    private static DirectoryLock tryOnce(Path dir, Path real) throws ConfigException, IOException {
        Path file = real.resolve(FILE);
        FileChannel channel = FileChannel.open(file, StandardOpenOption.CREATE, StandardOpenOption.READ,
                StandardOpenOption.WRITE);
        try {
            Object opened = fileKey(file);
            FileLock lock = channel.tryLock();
            if (lock == null) {
                throw inUse(dir, holder(channel));
            }
            if (opened == null || !opened.equals(fileKey(file))) {
                channel.close();
                return null;
            }
            byte[] who = (ProcessHandle.current().pid() + " on " + host() + ", started "
                    + Instant.now().truncatedTo(ChronoUnit.SECONDS) + "\n").getBytes(StandardCharsets.UTF_8);
            channel.truncate(0);
            channel.write(ByteBuffer.wrap(who), 0);
            channel.force(true);
            return new DirectoryLock(real, file, channel);
        } catch (ConfigException | IOException | RuntimeException e) {
            channel.close();
            throw e;
        }
    }

    /** The file's identity (device and inode on POSIX), or null when it does not exist. */
    private static Object fileKey(Path file) throws IOException {
        try {
            Object key = Files.readAttributes(file, BasicFileAttributes.class).fileKey();
            return key != null ? key : file; // no identities on this platform: trust the path
        } catch (NoSuchFileException e) {
            return null;
        }
    }

    private static String holder(FileChannel channel) throws IOException {
        ByteBuffer text = ByteBuffer.allocate(256);
        channel.read(text, 0);
        String who = new String(text.array(), 0, text.position(), StandardCharsets.UTF_8).strip();
        return who.isEmpty() ? "a process that has not written its pid yet" : "pid " + who;
    }

    private static ConfigException inUse(Path dir, String holder) {
        return new ConfigException("output_dir " + dir + " is in use by another run (" + holder + "); wait for it"
                + " to end or choose another output_dir");
    }

    private static String host() {
        String env = System.getenv("HOSTNAME");
        if (env != null && !env.isBlank()) {
            return env.strip();
        }
        try {
            return Files.readString(Path.of("/proc/sys/kernel/hostname")).strip();
        } catch (IOException | RuntimeException e) {
            return "an unknown host";
        }
    }

    /**
     * Deletes the lock file and the (otherwise empty) directory while still holding the lock, then releases it:
     * for a run that created the directory and wrote nothing into it. A process that opened the file meanwhile
     * sees it replaced and tries again.
     */
    void deleteWithDirectory() throws IOException {
        Files.deleteIfExists(file);
        Files.deleteIfExists(dir);
        close();
    }

    /** Releases the lock (closing the only descriptor of the file this process holds). */
    @Override
    public void close() throws IOException {
        try {
            channel.close();
        } finally {
            HELD.remove(dir);
        }
    }
}
