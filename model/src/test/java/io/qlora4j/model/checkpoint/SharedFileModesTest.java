package io.qlora4j.model.checkpoint;

import static org.junit.jupiter.api.Assertions.assertEquals;

import java.nio.file.Files;
import io.qlora4j.model.format.BaseFormats;
import java.nio.file.Path;
import java.nio.file.attribute.PosixFilePermissions;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SharedFileModesTest {
    @TempDir
    Path dir;

    @Test
    void quantizedModelIsReadableByOtherUsersLikeAPythonWrittenOne() throws Exception {
        Path out = dir.resolve("nf4");
        CheckpointQuantizer.builder(BaseFormats.QLORA).build().quantize(TinyModels.writeTinyModel(dir), out);
        // Java's temp files are owner-only; the output must carry the modes of an ordinary write.
        assertEquals("rwxr-xr-x", PosixFilePermissions.toString(Files.getPosixFilePermissions(out)));
        assertEquals("rw-r--r--", PosixFilePermissions.toString(Files.getPosixFilePermissions(out.resolve("model.safetensors"))));
    }
}
