package io.qlora4j.model.family;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelLoaderTest {
    @TempDir
    Path dir;

    @Test
    void largeMatricesAreCopiedInRowChunksExactly() throws Exception {
        float[] values = new float[7 * 3];
        for (int i = 0; i < values.length; i++) {
            values[i] = i * 0.5f - 3;
        }
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).build()) {
            writer.addFloats("w", DType.F32, new long[] {7, 3}, values);
        }
        try (NDManager m = NDManager.newBaseManager(); SafetensorsReader reader = SafetensorsReader.open(dir)) {
            NDArray chunked = ModelLoader.dense(reader, "w", m, 7); // two rows per chunk: 2, 2, 2, 1
            assertEquals(new Shape(7, 3), chunked.getShape());
            assertArrayEquals(values, chunked.toFloatArray());
        }
    }
}
