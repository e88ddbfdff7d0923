package io.qlora4j.model;

import static org.junit.jupiter.api.Assertions.assertDoesNotThrow;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Reading the libtorch release beside {@code PYTORCH_LIBRARY_PATH}, and refusing one DJL's JNI cannot drive. */
class LibtorchVersionTest {
    @TempDir
    Path dir;

    /** A pip torch's layout: torch/lib with torch/version.py beside it, as torch 2.11.0+cu130 writes it. */
    private Path pipTorch(String version) throws IOException {
        Path torch = dir.resolve("site-packages/torch");
        Files.createDirectories(torch.resolve("lib"));
        Files.writeString(torch.resolve("version.py"), "from typing import Optional\n\n"
                + "__all__ = ['__version__', 'debug', 'cuda', 'git_version', 'hip', 'rocm', 'xpu']\n"
                + "__version__ = '" + version + "'\ndebug = False\ncuda: Optional[str] = '13.0'\n");
        return torch.resolve("lib");
    }

    @Test
    void readsPipTorchAndLibtorchArchive() throws IOException {
        assertEquals("2.11.0+cu130", LibtorchVersion.of(pipTorch("2.11.0+cu130")).orElseThrow().version());
        Path libtorch = dir.resolve("libtorch");
        Files.createDirectories(libtorch.resolve("lib"));
        Files.writeString(libtorch.resolve("build-version"), "2.7.1+cu128\n");
        assertEquals("2.7.1+cu128", LibtorchVersion.of(libtorch.resolve("lib")).orElseThrow().version());
        Path bare = dir.resolve("bare/lib");
        Files.createDirectories(bare);
        assertTrue(LibtorchVersion.of(bare).isEmpty());
    }

    @Test
    void jniReleaseIsTheOneThePomPins() {
        assertEquals("2.7.1", LibtorchVersion.jniRelease());
    }

    @Test
    void refusesAnotherMinorReleaseByName() throws IOException {
        Path lib = pipTorch("2.11.0+cu130");
        ModelException e = assertThrows(ModelException.class, () -> LibtorchVersion.requireSupported(lib.toString()));
        assertTrue(e.getMessage().startsWith("PYTORCH_LIBRARY_PATH=" + lib + " holds torch 2.11.0+cu130"), e.getMessage());
        assertTrue(e.getMessage().contains("install torch==2.7.1"), e.getMessage());
    }

    @Test
    void acceptsAnyPatchOfTheJniReleaseAndAnUnsetOrUnversionedPath() throws IOException {
        assertDoesNotThrow(() -> LibtorchVersion.requireSupported(pipTorch("2.7.0+cu128").toString()));
        assertDoesNotThrow(() -> LibtorchVersion.requireSupported(null));
        assertDoesNotThrow(() -> LibtorchVersion.requireSupported(""));
        Path bare = Files.createDirectories(dir.resolve("bare/lib"));
        assertDoesNotThrow(() -> LibtorchVersion.requireSupported(bare.toString()));
    }

    @Test
    void acceptsAnotherReleaseWithAJniOfItsOwnBesideIt() throws IOException {
        Path lib = pipTorch("2.11.0+cu130");
        Files.writeString(lib.resolve("libdjl_torch.so"), "");
        assertDoesNotThrow(() -> LibtorchVersion.requireSupported(lib.toString()));
    }
}
