package io.qlora4j.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.ModelException;
import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Random;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class SafetensorsWriterTest {

    @TempDir
    Path dir;

    private List<String> fileNames() throws IOException {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }

    @Test
    void everyDtypeRoundTripsByteForByte() throws Exception {
        Random random = new Random(3);
        long[] shape = {2, 3};
        byte[][] data = new byte[DType.values().length][];
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).build()) {
            for (DType t : DType.values()) {
                data[t.ordinal()] = new byte[6 * t.size()];
                random.nextBytes(data[t.ordinal()]);
                writer.addBytes("t." + t, t, shape, data[t.ordinal()]);
            }
        }
        assertEquals(List.of("model.safetensors"), fileNames());
        try (SafetensorsReader reader = SafetensorsReader.open(dir)) {
            assertEquals(DType.values().length, reader.tensors().size());
            for (DType t : DType.values()) {
                TensorInfo info = reader.info("t." + t);
                assertEquals(t, info.dtype());
                assertArrayEquals(shape, info.shape());
                assertEquals(6, info.numel());
                ByteBuffer bytes = reader.bytes("t." + t);
                assertEquals(ByteOrder.LITTLE_ENDIAN, bytes.order());
                assertTrue(bytes.isReadOnly());
                byte[] copy = new byte[bytes.remaining()];
                bytes.get(copy);
                assertArrayEquals(data[t.ordinal()], copy, t.name());
            }
            assertArrayEquals(data[DType.U8.ordinal()], reader.u8("t.U8"));
            assertArrayEquals(data[DType.BOOL.ordinal()], reader.u8("t.BOOL"));
            assertArrayEquals(data[DType.I8.ordinal()], reader.u8("t.I8"));
            int[] ints = new int[6];
            ByteBuffer.wrap(data[DType.I32.ordinal()]).order(ByteOrder.LITTLE_ENDIAN).asIntBuffer().get(ints);
            assertArrayEquals(ints, reader.ints("t.I32"));
            long[] longs = new long[6];
            ByteBuffer.wrap(data[DType.I64.ordinal()]).order(ByteOrder.LITTLE_ENDIAN).asLongBuffer().get(longs);
            assertArrayEquals(longs, reader.longs("t.I64"));
        }
    }

    @Test
    void floatTensorsRoundTripTheirValues() throws Exception {
        float[] f32 = {0f, -0f, 1.5f, -3.25e-30f, Float.MAX_VALUE, -Float.MAX_VALUE};
        float[] f16 = {1f, -2.5f, 65504f, 0x1p-24f, 0x1p-14f, -65504f}; // all exact in binary16
        float[] bf16 = {1f, -3.140625f, 0x1p-133f, 3.3895314e38f, -0f, -3.3895314e38f}; // all exact in bfloat16
        ByteBuffer f64 = ByteBuffer.allocate(24).order(ByteOrder.LITTLE_ENDIAN).putDouble(0.1).putDouble(-1e30).putDouble(2.5);
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).build()) {
            writer.addFloats("f32", DType.F32, new long[] {2, 3}, f32);
            writer.addFloats("f16", DType.F16, new long[] {6}, f16);
            writer.addFloats("bf16", DType.BF16, new long[] {3, 2}, bf16);
            writer.add("f64", DType.F64, new long[] {3}, f64.flip());
        }
        try (SafetensorsReader reader = SafetensorsReader.open(dir.resolve("model.safetensors"))) {
            assertArrayEquals(f32, reader.floats("f32"));
            assertArrayEquals(f16, reader.floats("f16"));
            assertArrayEquals(bf16, reader.floats("bf16"));
            assertArrayEquals(new float[] {0.1f, -1e30f, 2.5f}, reader.floats("f64"));
            assertEquals(List.of("f32", "f16", "bf16", "f64"), reader.tensors().stream().map(TensorInfo::name).toList());
            float[] part = new float[4];
            reader.readFloats("bf16", 2, part, 1, 3);
            assertArrayEquals(new float[] {0f, 0x1p-133f, 3.3895314e38f, -0f}, part);
        }
    }

    @Test
    void bf16IsWidenedByTheBitRule() throws Exception {
        // bf16 bits are the high 16 bits of the float32: 0x3F80 -> 0x3F800000 = 1.0, 0xC049 -> -3.140625, ...
        Path file = RawSafetensors.write(dir.resolve("b.safetensors"),
                "{\"b\":{\"dtype\":\"BF16\",\"shape\":[4],\"data_offsets\":[0,8]}}",
                RawSafetensors.u16(0x3F80, 0xC049, 0x0001, 0x7F7F));
        try (SafetensorsReader reader = SafetensorsReader.open(file)) {
            float[] values = reader.floats("b");
            assertEquals(1f, values[0]);
            assertEquals(-3.140625f, values[1]);
            assertEquals(0x1p-133f, values[2]);
            assertEquals(3.3895314e38f, values[3]);
        }
    }

    @Test
    void infinityOrNanInAnyFloatTensorIsRefusedByFileTensorAndElement() throws Exception {
        // bf16 -inf (0xFF80), f16 NaN (0x7E00), f32 +inf (0x7F800000) after finite values
        Path b = RawSafetensors.write(dir.resolve("b.safetensors"),
                "{\"b\":{\"dtype\":\"BF16\",\"shape\":[3],\"data_offsets\":[0,6]}}", RawSafetensors.u16(0x3F80, 0xFF80, 0));
        Path h = RawSafetensors.write(dir.resolve("h.safetensors"),
                "{\"h\":{\"dtype\":\"F16\",\"shape\":[2,2],\"data_offsets\":[0,8]}}",
                RawSafetensors.u16(0x3C00, 0x3C00, 0x3C00, 0x7E00));
        Path f = RawSafetensors.write(dir.resolve("f.safetensors"),
                "{\"f\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}",
                RawSafetensors.f32(1f, Float.POSITIVE_INFINITY));
        for (Object[] c : new Object[][] {{b, "b", "-Infinity at element 1"}, {h, "h", "NaN at element 3"},
            {f, "f", "Infinity at element 1"}}) {
            try (SafetensorsReader reader = SafetensorsReader.open((Path) c[0])) {
                ModelException e = assertThrows(ModelException.class, () -> reader.floats((String) c[1]));
                assertEquals(c[0] + ": tensor '" + c[1] + "' holds " + c[2] + "; expected finite numbers", e.getMessage());
                float[] one = new float[1];
                reader.readFloats((String) c[1], 0, one, 0, 1);
                assertEquals(1f, one[0], "the finite part stays readable");
            }
        }
    }

    @Test
    void f16IsWidenedFromKnownBitPatterns() throws Exception {
        Path file = RawSafetensors.write(dir.resolve("h.safetensors"),
                "{\"h\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[0,10]}}",
                RawSafetensors.u16(0x3C00, 0x0001, 0x7BFF, 0xC000, 0x3555));
        try (SafetensorsReader reader = SafetensorsReader.open(file)) {
            float[] v = reader.floats("h");
            assertArrayEquals(new float[] {1f, 5.9604645e-8f, 65504f}, Arrays.copyOf(v, 3));
            assertEquals(-2f, v[3]);
            assertEquals(0.333251953125f, v[4]); // 0x3555: (1024 + 341) * 2^-12
        }
    }

    @Test
    void headerIsCompactJsonWithMetadataFirstPaddedWithSpacesToEightBytes() throws Exception {
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).optBaseName("adapter_model").build()) {
            writer.addFloats("w", DType.F32, new long[] {2}, new float[] {1f, 2f});
        }
        assertEquals(List.of("adapter_model.safetensors"), fileNames());
        byte[] file = Files.readAllBytes(dir.resolve("adapter_model.safetensors"));
        String json = "{\"__metadata__\":{\"format\":\"pt\"},\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}";
        assertEquals(85, json.length()); // 8 + 85 = 93, so three spaces make the data start at 96
        ByteBuffer buffer = ByteBuffer.wrap(file).order(ByteOrder.LITTLE_ENDIAN);
        assertEquals(88, buffer.getLong());
        assertEquals(json + "   ", new String(file, 8, 88, StandardCharsets.UTF_8));
        assertEquals(96 + 8, file.length);
        assertEquals(1f, buffer.getFloat(96));
        assertEquals(2f, buffer.getFloat(100));
    }

    @Test
    void metadataRoundTripsAndEmptyMetadataIsOmitted() throws Exception {
        Map<String, String> metadata = Map.of("format", "pt", "note", "héllo ✓");
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).optMetadata(metadata).build()) {
            writer.addFloats("w", DType.F32, new long[] {1}, new float[] {1f});
        }
        try (SafetensorsReader reader = SafetensorsReader.open(dir)) {
            assertEquals(metadata, reader.metadata());
        }
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).optBaseName("bare").optMetadata(Map.of()).build()) {
            writer.addFloats("w", DType.F32, new long[] {}, new float[] {1f});
        }
        assertFalse(new String(Files.readAllBytes(dir.resolve("bare.safetensors")), StandardCharsets.UTF_8).contains("__metadata__"));
        try (SafetensorsReader reader = SafetensorsReader.open(dir.resolve("bare.safetensors"))) {
            assertEquals(Map.of(), reader.metadata());
            assertEquals(1, reader.info("w").numel()); // a scalar
        }
    }

    @Test
    void smallBudgetWritesShardsAndASortedIndexThatTheReaderFollows() throws Exception {
        // budget 32 bytes: {layer.1 16, layer.0 16} | {big 40: alone, larger than the budget} | {norm 8, head 24}
        float[][] values = {new float[4], new float[4], new float[10], new float[2], new float[6]};
        String[] names = {"layer.1", "layer.0", "big", "norm", "head"};
        for (int i = 0; i < values.length; i++) {
            for (int j = 0; j < values[i].length; j++) {
                values[i][j] = 10 * i + j;
            }
        }
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).optMaxShardBytes(32).build()) {
            for (int i = 0; i < names.length; i++) {
                writer.addFloats(names[i], DType.F32, new long[] {values[i].length}, values[i]);
            }
        }
        assertEquals(List.of("model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors",
                "model-00003-of-00003.safetensors", "model.safetensors.index.json"), fileNames());
        String expectedIndex = """
                {
                  "metadata": {
                    "total_size": 104
                  },
                  "weight_map": {
                    "big": "model-00002-of-00003.safetensors",
                    "head": "model-00003-of-00003.safetensors",
                    "layer.0": "model-00001-of-00003.safetensors",
                    "layer.1": "model-00001-of-00003.safetensors",
                    "norm": "model-00003-of-00003.safetensors"
                  }
                }
                """;
        assertEquals(expectedIndex, Files.readString(dir.resolve("model.safetensors.index.json")));
        try (SafetensorsReader reader = SafetensorsReader.open(dir)) {
            assertEquals(List.of("big", "head", "layer.0", "layer.1", "norm"), reader.tensors().stream().map(TensorInfo::name).toList());
            for (int i = 0; i < names.length; i++) {
                assertArrayEquals(values[i], reader.floats(names[i]), names[i]);
            }
            assertEquals(dir.resolve("model-00003-of-00003.safetensors"), reader.info("head").file());
            assertEquals(Map.of("format", "pt"), reader.metadata());
        }
        try (SafetensorsReader shard = SafetensorsReader.open(dir.resolve("model-00003-of-00003.safetensors"))) {
            assertEquals(List.of("norm", "head"), shard.tensors().stream().map(TensorInfo::name).toList());
        }
    }

    @Test
    void nothingAppearsUnderAFinalNameBeforeClose() throws Exception {
        SafetensorsWriter writer = SafetensorsWriter.builder(dir).optMaxShardBytes(8).build();
        writer.addFloats("a", DType.F32, new long[] {2}, new float[] {1f, 2f});
        writer.addFloats("b", DType.F32, new long[] {2}, new float[] {3f, 4f});
        assertTrue(fileNames().stream().allMatch(n -> n.startsWith(".model.") && n.endsWith(".tmp")), fileNames().toString());
        writer.close();
        assertEquals(List.of("model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors",
                "model.safetensors.index.json"), fileNames());
    }

    @Test
    void abortDeletesEveryTempFileAndCloseThenDoesNothing() throws Exception {
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).optMaxShardBytes(8).build()) {
            writer.addFloats("a", DType.F32, new long[] {2}, new float[] {1f, 2f});
            writer.addFloats("b", DType.F32, new long[] {2}, new float[] {3f, 4f});
            writer.abort();
            assertThrows(IllegalStateException.class, () -> writer.addFloats("c", DType.F32, new long[] {1}, new float[] {1f}));
        }
        assertEquals(List.of(), fileNames());
    }

    @Test
    void wrongSizesAndNamesAreRefusedBeforeAnythingIsWritten() throws Exception {
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).build()) {
            writer.addFloats("a", DType.F32, new long[] {2}, new float[] {1f, 2f});
            IllegalArgumentException e = assertThrows(IllegalArgumentException.class,
                    () -> writer.addBytes("b", DType.F32, new long[] {2, 3}, new byte[20]));
            assertEquals("tensor 'b': shape [2, 3] of F32 needs 24 bytes but the buffer has 20", e.getMessage());
            assertThrows(IllegalArgumentException.class, () -> writer.addFloats("a", DType.F32, new long[] {1}, new float[] {1f}));
            assertThrows(IllegalArgumentException.class, () -> writer.addFloats("c", DType.I32, new long[] {1}, new float[] {1f}));
            assertThrows(IllegalArgumentException.class, () -> writer.addFloats("c", DType.F16, new long[] {3}, new float[] {1f}));
        }
        try (SafetensorsReader reader = SafetensorsReader.open(dir)) {
            assertEquals(List.of("a"), reader.tensors().stream().map(TensorInfo::name).toList());
        }
    }

    @Test
    void writerWithNoTensorsWritesAValidEmptyFile() throws Exception {
        SafetensorsWriter.builder(dir.resolve("out")).build().close();
        try (SafetensorsReader reader = SafetensorsReader.open(dir.resolve("out"))) {
            assertEquals(List.of(), reader.tensors());
            assertEquals(Map.of("format", "pt"), reader.metadata());
        }
    }

    @Test
    void addFromCopiesTensorsByteForByteInChunksThatNeedNotAlignWithElements() throws Exception {
        Random random = new Random(4);
        Path source = dir.resolve("source");
        Map<String, byte[]> data = Map.of("a", new byte[3 * 5 * 4], "b", new byte[2], "c", new byte[0]);
        data.values().forEach(random::nextBytes);
        try (SafetensorsWriter writer = SafetensorsWriter.builder(source).build()) {
            writer.addBytes("a", DType.F32, new long[] {3, 5}, data.get("a"));
            writer.addBytes("b", DType.BF16, new long[] {1}, data.get("b"));
            writer.addBytes("c", DType.I64, new long[] {0, 4}, data.get("c"));
        }
        Path copy = dir.resolve("copy");
        try (SafetensorsReader in = SafetensorsReader.open(source);
                SafetensorsWriter writer = SafetensorsWriter.builder(copy).build()) {
            for (TensorInfo t : in.tensors()) {
                writer.addFrom(in, t.name(), 7);
            }
        }
        try (SafetensorsReader in = SafetensorsReader.open(source); SafetensorsReader out = SafetensorsReader.open(copy)) {
            for (TensorInfo t : in.tensors()) {
                TensorInfo c = out.info(t.name());
                assertEquals(t.dtype(), c.dtype(), t.name());
                assertArrayEquals(t.shape(), c.shape(), t.name());
                byte[] bytes = new byte[(int) c.byteSize()];
                out.bytes(t.name()).get(bytes);
                assertArrayEquals(data.get(t.name()), bytes, t.name());
            }
        }
    }
}
