package io.qlora4j.trainer;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.checkpoint.AtomicFiles;
import io.qlora4j.model.safetensors.SharedFileModes;
import io.qlora4j.trainer.config.ConfigException;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Comparator;
import java.util.List;
import java.util.Optional;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Stream;

/**
 * A run's {@code output_dir}: {@code checkpoint-N/} directories that appear only complete (staged
 * under a hidden name, renamed when every file is written), the final output published file by file
 * through renames, pruning by {@code save_total_limit}, and the rules for reusing a directory.
 */
final class RunDirectory {
    private static final Pattern CHECKPOINT = Pattern.compile("checkpoint-(\\d+)");
    private static final String STAGING_PREFIX = ".staging-";

    /** Writes the files of a checkpoint or of the final output into a directory. */
    @FunctionalInterface
    interface Contents {
        /** Writes everything into {@code dir}. */
        void writeTo(Path dir) throws IOException, ModelException;
    }

    private final Path root;

    private RunDirectory(Path root) {
        this.root = root;
    }

    /**
     * Opens {@code root} for a run. A fresh run refuses a non-empty directory unless {@code overwrite},
     * which first removes the checkpoints and metrics of the earlier run; a resumed run keeps it. Hidden
     * leftovers of an interrupted save are removed either way.
     */
    static RunDirectory open(Path root, boolean overwrite, boolean resuming) throws ConfigException, IOException {
        RunDirectory dir = new RunDirectory(root);
        if (!resuming && Files.isDirectory(root) && !isEmpty(root)) {
            if (!overwrite) {
                throw new ConfigException("output_dir " + root + " exists and is not empty; set overwrite_output_dir: true"
                        + " to replace it or resume_from_checkpoint: true to continue it");
            }
            for (Path checkpoint : dir.checkpoints()) {
                deleteRecursively(checkpoint);
            }
            Files.deleteIfExists(root.resolve(MetricsLog.FILE));
        }
        Files.createDirectories(root);
        dir.removeLeftovers();
        return dir;
    }

    /** The directory itself. */
    Path path() {
        return root;
    }

    /** The complete checkpoints (those holding a trainer_state.json), oldest step first. */
    List<Path> checkpoints() throws IOException {
        if (!Files.isDirectory(root)) {
            return List.of();
        }
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
        Path staging = SharedFileModes.apply(Files.createTempDirectory(root, STAGING_PREFIX + "checkpoint-" + step + "-"));
        try {
            contents.writeTo(staging);
            if (Files.exists(target)) {
                deleteRecursively(target);
            }
            AtomicFiles.move(staging, target);
        } finally {
            deleteRecursively(staging);
        }
        if (limit != null) {
            List<Path> all = new ArrayList<>(checkpoints());
            while (all.size() > limit) {
                deleteRecursively(all.remove(0));
            }
        }
        return target;
    }

    /** Writes the final output at the top of the directory: staged whole, then each file renamed into place. */
    void publish(Contents contents) throws IOException, ModelException {
        Path staging = SharedFileModes.apply(Files.createTempDirectory(root, STAGING_PREFIX + "final-"));
        try {
            contents.writeTo(staging);
            try (Stream<Path> files = Files.list(staging)) {
                for (Path file : files.toList()) {
                    AtomicFiles.move(file, root.resolve(file.getFileName()));
                }
            }
        } finally {
            deleteRecursively(staging);
        }
    }

    private void removeLeftovers() throws IOException {
        try (Stream<Path> entries = Files.list(root)) {
            for (Path p : entries.toList()) {
                String name = p.getFileName().toString();
                if (name.startsWith(STAGING_PREFIX) || (name.startsWith(".") && name.endsWith(AtomicFiles.TEMP_SUFFIX))) {
                    deleteRecursively(p);
                }
            }
        }
    }

    private static long stepOf(Path checkpoint) {
        Matcher m = CHECKPOINT.matcher(checkpoint.getFileName().toString());
        return m.matches() ? Long.parseLong(m.group(1)) : -1;
    }

    private static boolean isEmpty(Path dir) throws IOException {
        try (Stream<Path> entries = Files.list(dir)) {
            return entries.findAny().isEmpty();
        }
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
