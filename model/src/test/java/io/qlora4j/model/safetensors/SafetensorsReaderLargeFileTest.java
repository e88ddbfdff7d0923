package io.qlora4j.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.ModelException;
import java.io.RandomAccessFile;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Offsets past 2 GiB and multi-chunk reads, proven on a sparse file: the 2.5 GiB tensor is never
 * written, so it costs no disk and no time.
 */
class SafetensorsReaderLargeFileTest {

    private static final long GAP = 2_684_354_560L; // 2.5 GiB of U8
    private static final int WIDE = SafetensorsReader.CHUNK_BYTES / 4 + 2; // F32 elements: two chunks

    @TempDir
    Path dir;

    @Test
    void tensorsBeyondTwoGibibytesAreReadThroughLongOffsets() throws Exception {
        long wideEnd = GAP + 4L * WIDE;
        String header = "{\"gap\":{\"dtype\":\"U8\",\"shape\":[" + GAP + "],\"data_offsets\":[0," + GAP + "]},"
                + "\"wide\":{\"dtype\":\"F32\",\"shape\":[" + WIDE + "],\"data_offsets\":[" + GAP + "," + wideEnd + "]},"
                + "\"small\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[" + wideEnd + "," + (wideEnd + 16) + "]}}";
        byte[] json = header.getBytes(StandardCharsets.UTF_8);
        long dataStart = 8 + json.length;
        Path file = dir.resolve("sparse.safetensors");
        try (RandomAccessFile raf = new RandomAccessFile(file.toFile(), "rw")) {
            raf.write(ByteBuffer.allocate(8).order(ByteOrder.LITTLE_ENDIAN).putLong(json.length).array());
            raf.write(json);
            raf.setLength(dataStart + wideEnd + 16); // sparse: the gap stays a hole
            // wide: values at the first element, either side of the chunk boundary, and the last element
            int boundary = SafetensorsReader.CHUNK_BYTES / 4;
            int[] marked = {0, boundary - 1, boundary, WIDE - 1};
            for (int i = 0; i < marked.length; i++) {
                raf.seek(dataStart + GAP + 4L * marked[i]);
                raf.write(RawSafetensors.f32(i + 1));
            }
            raf.seek(dataStart + wideEnd);
            raf.write(RawSafetensors.f32(1.5f, -2f, 3.25f, 1e-3f));
        }
        try (SafetensorsReader reader = SafetensorsReader.open(file)) {
            TensorInfo small = reader.info("small");
            assertEquals(dataStart + wideEnd, small.begin());
            assertArrayEquals(new float[] {1.5f, -2f, 3.25f, 1e-3f}, reader.floats("small"));
            assertEquals(-2f, reader.bytes("small").getFloat(4));

            float[] wide = reader.floats("wide");
            int boundary = SafetensorsReader.CHUNK_BYTES / 4;
            assertEquals(1f, wide[0]);
            assertEquals(0f, wide[1]);
            assertEquals(0f, wide[boundary - 2]);
            assertEquals(2f, wide[boundary - 1]);
            assertEquals(3f, wide[boundary]);
            assertEquals(4f, wide[WIDE - 1]);

            float[] piece = new float[3];
            reader.readFloats("wide", boundary - 1, piece, 0, 3);
            assertArrayEquals(new float[] {2f, 3f, 4f}, piece);

            ModelException tooBig = assertThrows(ModelException.class, () -> reader.bytes("gap"));
            assertTrue(tooBig.getMessage().contains("tensor 'gap' is 2684354560 bytes, more than one ByteBuffer can hold (2 GiB)"),
                    tooBig.getMessage());
            ModelException tooMany = assertThrows(ModelException.class, () -> reader.u8("gap"));
            assertTrue(tooMany.getMessage().contains("too many for one Java array"), tooMany.getMessage());
        }
    }
}
