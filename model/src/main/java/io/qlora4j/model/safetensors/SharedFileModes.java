package io.qlora4j.model.safetensors;

import java.io.IOException;
import java.nio.file.FileSystems;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;

/**
 * Gives temp files and directories, which Java creates owner-only (0600/0700), the modes an ordinary
 * write would have (0644/0755) before they are renamed into place, so that a model or adapter written
 * by qlora4j can be served or read by another user, as one written by Python can.
 */
public final class SharedFileModes {
    private static final boolean POSIX = FileSystems.getDefault().supportedFileAttributeViews().contains("posix");

    private SharedFileModes() {}

    /** Makes {@code path} readable by everyone (and a directory listable); a no-op off POSIX file systems. */
    public static Path apply(Path path) throws IOException {
        if (POSIX) {
            Files.setPosixFilePermissions(path,
                    PosixFilePermissions.fromString(Files.isDirectory(path) ? "rwxr-xr-x" : "rw-r--r--"));
        }
        return path;
    }
}
