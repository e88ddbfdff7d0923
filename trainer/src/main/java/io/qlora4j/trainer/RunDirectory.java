package io.qlora4j.trainer;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.checkpoint.AtomicFiles;
import io.qlora4j.model.safetensors.SharedFileModes;
import io.qlora4j.trainer.config.ConfigException;
import java.io.IOException;
import java.nio.file.DirectoryNotEmptyException;
import java.nio.file.FileSystemException;
import java.nio.file.Files;
import java.nio.file.NoSuchFileException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A run's {@code output_dir}, held under an exclusive {@link DirectoryLock} from the moment it is opened:
 * {@code checkpoint-N/} directories that appear only complete (staged under a hidden name, every file and the
 * directory forced to disk, then renamed), checkpoints removed by one rename before their files are deleted
 * (pruning by {@code save_total_limit}), the final output published file by file with {@code trainer_state.json}
 * last, and the rules for reusing a directory. What survives a kill or a power loss is in docs/RELIABILITY.md.
 */
final class RunDirectory implements AutoCloseable {
    private static final Pattern CHECKPOINT = Pattern.compile("checkpoint-(\\d+)");
    private static final String STAGING_PREFIX = ".staging-";
    private static final String TRASH_PREFIX = ".deleting-";

    /** Writes the files of a checkpoint or of the final output into a directory. */
    @FunctionalInterface
    interface Contents {
        /** Writes everything into {@code dir}. */
        void writeTo(Path dir) throws IOException, ModelException;
    }

    private final Path root;
    private final DirectoryLock lock;
    private final Path created;
    private boolean replacing;

    private RunDirectory(Path root, DirectoryLock lock, Path created) {
        this.root = root;
        this.lock = lock;
        this.created = created;
    }

    /**
     * Locks {@code root} (creating it when missing) for a run, then removes the hidden leftovers of an interrupted
     * save. A fresh run refuses a directory with anything else in it unless {@code overwrite}, which replaces the
     * earlier run: its checkpoints, metrics and trainer state go when this run {@linkplain #beginWriting begins
     * writing}, so a job that stops at its validation (a typo, a missing dataset, a model it cannot load) leaves the
     * earlier run whole. A resumed run keeps it.
     *
     * @throws ConfigException when root is a file, or another run holds it, or it is not empty for a fresh run
     */
    static RunDirectory open(Path root, boolean overwrite, boolean resuming) throws ConfigException, IOException {
        if (Files.exists(root) && !Files.isDirectory(root)) {
            throw new ConfigException("output_dir " + root + " is a file; expected a directory (it is created when"
                    + " missing)");
        }
        Path created = null; // the outermost directory this run creates
        for (Path p = root.toAbsolutePath(); p != null && !Files.exists(p); p = p.getParent()) {
            created = p;
        }
        try {
            Files.createDirectories(root);
        } catch (IOException e) {
            throw new ConfigException("output_dir " + root + ": cannot create the directory (" + why(e) + ")");
        }
        RunDirectory dir = new RunDirectory(root, DirectoryLock.acquire(root), created);
        try {
            CrashPoint.reach("startup");
            dir.removeLeftovers();
            if (!resuming && !dir.isEmpty()) {
                if (!overwrite) {
                    throw new ConfigException("output_dir " + root + " exists and is not empty; set"
                            + " overwrite_output_dir: true to replace it or resume_from_checkpoint: true to continue it");
                }
                dir.replacing = true;
            }
            return dir;
        } catch (ConfigException | IOException | RuntimeException e) {
            dir.close();
            throw e;
        }
    }

    /**
     * Removes what an earlier run left when this one replaces it ({@code overwrite_output_dir}): its trainer state
     * first (so the directory no longer reads as a finished run), its checkpoints and its metrics. Called once the job
     * has checked everything it can before training; does nothing otherwise.
     */
    void beginWriting() throws IOException {
        if (replacing) {
            Files.deleteIfExists(root.resolve(TrainerState.FILE));
            for (Path checkpoint : checkpoints()) {
                discard(checkpoint);
            }
            Files.deleteIfExists(root.resolve(MetricsLog.FILE));
            replacing = false;
        }
    }

    /** What a file system refusal says, as a user reads it: the file and the reason, without Java's class name. */
    private static String why(IOException e) {
        if (e instanceof NoSuchFileException f) {
            return f.getFile() + ": no such file or directory";
        }
        if (e instanceof FileSystemException f && f.getReason() != null) {
            return f.getFile() + ": " + f.getReason();
        }
        return e.getMessage();
    }

    /** The directory itself. */
    Path path() {
        return root;
    }

    /** The complete checkpoints (those holding a trainer_state.json), oldest step first. */
    List<Path> checkpoints() throws IOException {
        try (Stream<Path> entries = Files.list(root)) {
            return entries.filter(p -> CHECKPOINT.matcher(p.getFileName().toString()).matches())
                    .filter(p -> Files.isRegularFile(p.resolve(TrainerState.FILE)))
                    .sorted(Comparator.comparingLong(RunDirectory::stepOf))
                    .toList();
        }
    }

    /**
     * The checkpoint {@code resume_from_checkpoint} names: {@code true} for the latest in this directory,
     * else a path to a checkpoint directory.
     */
    Path resumeSource(String value) throws ConfigException, IOException {
        if (value.equalsIgnoreCase("true")) {
            List<Path> all = checkpoints();
            if (all.isEmpty()) {
                throw new ConfigException("resume_from_checkpoint: no complete checkpoint-N directory in " + root);
            }
            return all.get(all.size() - 1);
        }
        Path given = Path.of(value);
        if (!Files.isRegularFile(given.resolve(TrainerState.FILE))) {
            throw new ConfigException("resume_from_checkpoint: " + value + " is not a checkpoint directory (no "
                    + TrainerState.FILE + ")");
        }
        return given;
    }

    /**
     * Writes {@code checkpoint-<step>} complete or not at all, then deletes the oldest checkpoints beyond
     * {@code limit} (null: keep all). Returns the checkpoint's path.
     */
    Path saveCheckpoint(int step, Contents contents, Integer limit) throws IOException, ModelException {
        Path target = root.resolve("checkpoint-" + step);
        Path staging = stage(STAGING_PREFIX + "checkpoint-" + step + "-", target,
                "the checkpoints before it are intact", contents);
        try {
            CrashPoint.reach("checkpoint.staged");
            if (Files.exists(target)) {
                discard(target);
            }
            AtomicFiles.move(staging, target);
            AtomicFiles.syncDirectory(root);
        } finally {
            deleteRecursively(staging);
        }
        CrashPoint.reach("checkpoint.published");
        prune(limit);
        return target;
    }

    /** Deletes the oldest checkpoints beyond {@code limit} (null: keeps all). */
    void prune(Integer limit) throws IOException {
        if (limit != null) {
            List<Path> all = new ArrayList<>(checkpoints());
            while (all.size() > limit) {
                discard(all.remove(0));
            }
        }
    }

    /**
     * Writes the final output at the top of the directory: staged whole, then each file renamed into place,
     * {@code trainer_state.json} last (and an earlier one removed first), so that a top level holding a
     * trainer_state.json is complete. A run killed in between leaves its last checkpoint, from which a resume
     * writes the output again.
     */
    void publish(Contents contents) throws IOException, ModelException {
        Path staging = stage(STAGING_PREFIX + "final-", root, "the last checkpoint is intact, and"
                + " resume_from_checkpoint: true writes the output from it", contents);
        try {
            CrashPoint.reach("final.staged");
            Files.deleteIfExists(root.resolve(TrainerState.FILE));
            List<Path> files;
            try (Stream<Path> entries = Files.list(staging)) {
                files = entries.sorted(Comparator.comparing((Path p) -> p.endsWith(TrainerState.FILE))
                        .thenComparing(Path::getFileName)).toList();
            }
            for (Path file : files) {
                Path target = root.resolve(file.getFileName());
                if (Files.isDirectory(file) && Files.isDirectory(target)) {
                    deleteRecursively(target); // a directory of the output replaces the previous one whole
                }
                AtomicFiles.move(file, target);
                CrashPoint.reach("final.rename");
            }
            AtomicFiles.syncDirectory(root);
        } finally {
            deleteRecursively(staging);
        }
    }

    /**
     * A new hidden directory holding {@code contents}, its files and entries forced to disk. A write that fails (a
     * full disk) leaves nothing and is reported as one of {@code target}, saying what is intact ({@code intact}).
     */
    private Path stage(String prefix, Path target, String intact, Contents contents) throws IOException, ModelException {
        Path staging = SharedFileModes.apply(Files.createTempDirectory(root, prefix));
        try {
            contents.writeTo(staging);
            try (Stream<Path> entries = Files.walk(staging)) { // a saved directory may hold one, e.g. pissa_converted
                for (Path entry : entries.sorted(Comparator.reverseOrder()).toList()) {
                    if (Files.isDirectory(entry)) {
                        AtomicFiles.syncDirectory(entry);
                    } else {
                        AtomicFiles.force(entry);
                    }
                }
            }
            return staging;
        } catch (IOException | ModelException e) {
            deleteRecursively(staging);
            throw new ModelException(target + ": not written (" + String.valueOf(e.getMessage())
                    .replace(staging.toString(), target.toString()) + "); " + intact, e);
        } catch (RuntimeException e) {
            deleteRecursively(staging);
            throw e;
        }
    }

    /** Removes a checkpoint in one rename (to a hidden name that the next open cleans up), then its files. */
    private void discard(Path checkpoint) throws IOException {
        Path trash = root.resolve(TRASH_PREFIX + checkpoint.getFileName());
        deleteRecursively(trash);
        AtomicFiles.move(checkpoint, trash);
        CrashPoint.reach("prune");
        deleteRecursively(trash);
    }

    /**
     * Releases the directory. A run that created it (and maybe folders above it) and left nothing in it (it failed
     * before writing anything) removes them again.
     */
    @Override
    public void close() throws IOException {
        if (created == null || !isEmpty()) {
            lock.close();
            return;
        }
        lock.deleteWithDirectory();
        for (Path p = root.toAbsolutePath().getParent(); p != null && p.startsWith(created); p = p.getParent()) {
            try {
                Files.deleteIfExists(p);
            } catch (DirectoryNotEmptyException e) {
                return; // something else was put there meanwhile
            }
        }
    }

    private void removeLeftovers() throws IOException {
        try (Stream<Path> entries = Files.list(root)) {
            for (Path p : entries.toList()) {
                String name = p.getFileName().toString();
                if (name.startsWith(STAGING_PREFIX) || name.startsWith(TRASH_PREFIX)
                        || (name.startsWith(".") && name.endsWith(AtomicFiles.TEMP_SUFFIX))) {
                    deleteRecursively(p);
                }
            }
        }
    }

    /** Whether the directory holds nothing but its lock file. */
    private boolean isEmpty() throws IOException {
        try (Stream<Path> entries = Files.list(root)) {
            return entries.allMatch(p -> p.getFileName().toString().equals(DirectoryLock.FILE));
        }
    }

    private static long stepOf(Path checkpoint) {
        Matcher m = CHECKPOINT.matcher(checkpoint.getFileName().toString());
        return m.matches() ? Long.parseLong(m.group(1)) : -1;
    }

    static void deleteRecursively(Path root) throws IOException {
        if (!Files.exists(root)) {
            return;
        }
        try (Stream<Path> walk = Files.walk(root)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.deleteIfExists(p);
            }
        }
    }
}
