package io.qlora4j.model;

import java.io.IOException;
import java.io.InputStream;
import java.io.UncheckedIOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Optional;
import java.util.Properties;
import java.util.regex.Matcher;
import java.util.regex.Pattern;

/**
 * The version of the libtorch that {@code PYTORCH_LIBRARY_PATH} points DJL at, read from the files beside it: a pip
 * torch's {@code torch/version.py} ({@code __version__ = '2.11.0+cu130'}) or a libtorch archive's
 * {@code build-version}. DJL's PyTorch JNI is compiled against one libtorch release and inlines parts of its tensor
 * code, so another release may load, see the GPU and then fail on the first array it creates: measured with DJL
 * 0.36's 2.7.1 JNI over torch 2.11.0+cu130 on an H100, where every array creation, on the CPU as on the GPU, failed
 * ({@code set_stride is not allowed on a Tensor created from .data or .detach()}). qlora4j refuses such a library
 * by name before a job starts, rather than failing inside the model loader.
 *
 * @param version the release, local suffix included ({@code 2.11.0+cu130})
 */
public record LibtorchVersion(String version) {
    private static final Pattern PIP_VERSION = Pattern.compile("(?m)^__version__\\s*=\\s*['\"]([^'\"]+)['\"]");

    /**
     * The version of the libtorch in {@code libDir}, when one of the files that say it sits beside the folder.
     *
     * @param libDir a folder holding {@code libtorch.so}, as {@code PYTORCH_LIBRARY_PATH} names it
     * @return the version, or empty when neither file is there (the library is then taken on trust)
     */
    public static Optional<LibtorchVersion> of(Path libDir) {
        Path parent = libDir.toAbsolutePath().normalize().getParent();
        if (parent == null) {
            return Optional.empty();
        }
        try {
            Path pip = parent.resolve("version.py");
            if (Files.isRegularFile(pip)) {
                Matcher m = PIP_VERSION.matcher(Files.readString(pip));
                return m.find() ? Optional.of(new LibtorchVersion(m.group(1))) : Optional.empty();
            }
            Path archive = parent.resolve("build-version");
            if (Files.isRegularFile(archive)) {
                String text = Files.readString(archive).strip();
                return text.isEmpty() ? Optional.empty() : Optional.of(new LibtorchVersion(text));
            }
            return Optional.empty();
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /**
     * Refuses a {@code PYTORCH_LIBRARY_PATH} whose libtorch is not the release DJL's JNI was built for (major and
     * minor must match; any patch release binds). Nothing is checked when the variable is unset or empty (DJL then
     * uses its own natives), when the folder holds a {@code libdjl_torch.so} of its own (DJL loads that JNI first:
     * one compiled against this libtorch, as {@code scripts/build-djl-jni.sh} makes) or when no version file sits
     * beside the folder.
     *
     * @param pytorchLibraryPath the variable's value, or null
     * @throws ModelException naming the folder, the version found and the one to install
     */
    public static void requireSupported(String pytorchLibraryPath) throws ModelException {
        if (pytorchLibraryPath == null || pytorchLibraryPath.isBlank()) {
            return;
        }
        Path libDir = Path.of(pytorchLibraryPath);
        if (Files.exists(libDir.resolve(System.mapLibraryName("djl_torch")))) {
            return; // a JNI built against this libtorch, which DJL takes before its own
        }
        Optional<LibtorchVersion> found = of(libDir);
        String wanted = jniRelease();
        if (found.isPresent() && !minor(found.get().version()).equals(minor(wanted))) {
            throw new ModelException("PYTORCH_LIBRARY_PATH=" + pytorchLibraryPath + " holds torch "
                    + found.get().version() + ", but DJL's PyTorch JNI is built for " + wanted
                    + " and cannot create arrays on another release: install torch==" + wanted
                    + " (for CUDA, its cu128 build) and point PYTORCH_LIBRARY_PATH at its torch/lib, or compile the JNI"
                    + " against this one (scripts/build-djl-jni.sh)");
        }
    }

    /** The libtorch release of the JNI on the class path ({@code jni_version=2.7.1-0.36.0} in DJL's jar). */
    static String jniRelease() {
        try (InputStream in = LibtorchVersion.class.getResourceAsStream("/jnilib/pytorch.properties")) {
            if (in == null) {
                throw new IllegalStateException("DJL's pytorch-jni jar (jnilib/pytorch.properties) is not on the class path");
            }
            Properties properties = new Properties();
            properties.load(in);
            return properties.getProperty("jni_version").split("-", 2)[0];
        } catch (IOException e) {
            throw new UncheckedIOException(e);
        }
    }

    /** {@code 2.7} of {@code 2.7.1+cu128}. */
    private static String minor(String version) {
        String[] parts = version.split("[.+]", 3);
        return parts.length < 2 ? version : parts[0] + "." + parts[1];
    }
}
