package io.qlora4j.model.checkpoint;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.safetensors.SharedFileModes;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardCopyOption;
import java.util.Comparator;
import java.util.stream.Stream;

/**
 * A model directory written all at once or not at all: files go to a hidden sibling directory,
 * which is forced to disk and renamed onto the target only when {@link #commit()} is called. Closing without a commit
 * deletes the partial work, so a failed or interrupted job never leaves a half-written model; what a killed job left
 * (its process gone) is deleted by the next job writing the same target.
 */
public final class OutputDirectory implements AutoCloseable {
    private final Path target;
    private final Path staging;
    private boolean committed;

    private OutputDirectory(Path target, Path staging) {
        this.target = target;
        this.staging = staging;
    }

    /**
     * Starts writing {@code target}, which must not exist or be an empty directory.
     *
     * @throws ModelException when the target exists and is not empty, or cannot be created
     */
    public static OutputDirectory create(Path target) throws ModelException {
        return create(target, "export_dir");
    }

    /**
     * Starts writing {@code target}, which must not exist or be an empty directory; {@code setting} names what chose
     * it (a key or a command's argument) in the refusal of an occupied one.
     *
     * @throws ModelException when the target exists and is not empty, or cannot be created
     */
    public static OutputDirectory create(Path target, String setting) throws ModelException {
        Path absolute = target.toAbsolutePath().normalize();
        if (Files.exists(absolute) && !isEmptyDirectory(absolute)) {
            throw new ModelException(target + ": exists and is not empty; choose another " + setting + " or remove it");
        }
        try {
            Path parent = absolute.getParent();
            Files.createDirectories(parent);
            String prefix = "." + absolute.getFileName() + ".partial-";
            removeDeadStaging(parent, prefix);
            Path staging = SharedFileModes.apply(Files.createTempDirectory(parent,
                    prefix + ProcessHandle.current().pid() + "-"));
            return new OutputDirectory(absolute, staging);
        } catch (IOException e) {
            throw new ModelException(target + ": cannot create the output directory: " + e.getMessage(), e);
        }
    }

    /** The directory to write into until {@link #commit()}. */
    public Path path() {
        return staging;
    }

    /** Moves the finished directory onto the target in one rename. */
    public void commit() throws ModelException {
        try {
            AtomicFiles.syncDirectory(staging); // its files are forced by their writers
            if (Files.isDirectory(target)) {
                Files.delete(target);
            }
            Files.move(staging, target, StandardCopyOption.ATOMIC_MOVE);
            committed = true;
            AtomicFiles.syncDirectory(target.getParent());
        } catch (IOException e) {
            throw new ModelException(target + ": cannot move the finished output into place: " + e.getMessage(), e);
        }
    }

    /** Deletes the staging directory unless the output was committed. */
    @Override
    public void close() {
        if (!committed) {
            deleteRecursively(staging);
        }
    }

    /**
     * Deletes the staging directories beside {@code prefix}'s target that a killed job left: each is named
     * {@code prefix<pid>-<random>} by the process that made it, so one whose process is gone is no one's. A live
     * process's (another export to the same place) is left alone, as is one of another naming.
     */
    private static void removeDeadStaging(Path parent, String prefix) throws IOException {
        try (Stream<Path> siblings = Files.list(parent)) {
            for (Path p : siblings.filter(p -> p.getFileName().toString().startsWith(prefix)).toList()) {
                String rest = p.getFileName().toString().substring(prefix.length());
                int dash = rest.indexOf('-');
                if (dash > 0 && dash <= 18 && rest.substring(0, dash).chars().allMatch(Character::isDigit)
                        && ProcessHandle.of(Long.parseLong(rest.substring(0, dash))).isEmpty()) {
                    deleteRecursively(p);
                }
            }
        }
    }

    private static boolean isEmptyDirectory(Path p) {
        if (!Files.isDirectory(p)) {
            return false;
        }
        try (Stream<Path> entries = Files.list(p)) {
            return entries.findAny().isEmpty();
        } catch (IOException e) {
            return false;
        }
    }

    static void deleteRecursively(Path root) {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(root)) {
            walk.sorted(Comparator.reverseOrder()).forEach(p -> {
                try {
                    Files.deleteIfExists(p);
                } catch (IOException e) {
                    throw new UncheckedIOException(e);
                }
            });
        } catch (IOException | UncheckedIOException e) {
            // Best effort: a leftover hidden staging directory is harmless and named as such.
        }
    }
}
