package io.qlora4j.model.safetensors;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.ModelException;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every malformed file is refused on open with one line naming the file, the tensor and the fault. */
class SafetensorsReaderValidationTest {

    @TempDir
    Path dir;

    private static final String GOOD_W = "\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}";

    /** Opens {@code file}, expects a failure, and checks the message is one line holding every phrase. */
    private static String refused(Path file, String... phrases) {
        ModelException e = assertThrows(ModelException.class, () -> SafetensorsReader.open(file).close());
        String message = e.getMessage();
        assertTrue(!message.contains("\n"), "one line: " + message);
        for (String phrase : phrases) {
            assertTrue(message.contains(phrase), "expected '" + phrase + "' in: " + message);
        }
        return message;
    }

    private Path file(String header, int dataBytes) throws IOException {
        return RawSafetensors.write(dir.resolve("bad.safetensors"), header, new byte[dataBytes]);
    }

    @Test
    void fileShorterThanTheLengthPrefixIsRefused() throws IOException {
        Path file = Files.write(dir.resolve("tiny.safetensors"), new byte[] {1, 2, 3});
        refused(file, "tiny.safetensors", "too short");
    }

    @Test
    void headerLengthPastEndOfFileIsRefused() throws IOException {
        Path file = RawSafetensors.write(dir.resolve("cut.safetensors"), 500, "{}".getBytes(StandardCharsets.UTF_8), new byte[0]);
        refused(file, "cut.safetensors", "header length 500 runs past the end of the file (10 bytes)");
    }

    @Test
    void absurdHeaderLengthsAreRefused() throws IOException {
        byte[] header = "{}".getBytes(StandardCharsets.UTF_8);
        refused(RawSafetensors.write(dir.resolve("huge.safetensors"), 200_000_000L, header, new byte[0]),
                "huge.safetensors", "header length 200000000 is not plausible");
        refused(RawSafetensors.write(dir.resolve("one.safetensors"), 1, header, new byte[0]),
                "one.safetensors", "header length 1 is not plausible");
        refused(RawSafetensors.write(dir.resolve("neg.safetensors"), -1, header, new byte[0]),
                "neg.safetensors", "header length 18446744073709551615 is not plausible");
    }

    @Test
    void invalidUtf8HeaderIsRefused() throws IOException {
        byte[] header = {'{', '"', (byte) 0xC3, (byte) 0x28, '"', ':', '1', '}'};
        refused(RawSafetensors.write(dir.resolve("enc.safetensors"), header.length, header, new byte[0]),
                "enc.safetensors", "not valid UTF-8");
    }

    @Test
    void invalidJsonHeaderIsRefused() throws IOException {
        refused(file("{\"w\":{\"dtype\":\"F32\",", 0), "bad.safetensors", "not valid JSON");
        refused(file("{} {}", 0), "bad.safetensors", "not valid JSON");
    }

    @Test
    void headerThatIsNotAnObjectIsRefused() throws IOException {
        refused(file("[1, 2]  ", 0), "bad.safetensors", "must be an object, found ARRAY");
    }

    @Test
    void duplicateTensorInOneHeaderIsRefused() throws IOException {
        refused(file("{" + GOOD_W + "," + GOOD_W + "}", 8), "bad.safetensors", "not valid JSON", "Duplicate field 'w'");
    }

    @Test
    void missingOrInvalidFieldsAreRefusedNamingTheTensor() throws IOException {
        refused(file("{\"w\":[1]}", 0), "bad.safetensors", "tensor 'w'", "entry must be an object");
        refused(file("{\"w\":{\"shape\":[2],\"data_offsets\":[0,8]}}", 8), "tensor 'w'", "missing or non-string dtype");
        refused(file("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,8]}}", 8), "tensor 'w'", "shape must be an array of integers, found nothing");
        refused(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2.5],\"data_offsets\":[0,8]}}", 8), "tensor 'w'", "shape must be an array");
        refused(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2]}}", 8), "tensor 'w'", "data_offsets must be an array of 2 integers");
        refused(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}}", 8), "tensor 'w'", "data_offsets must be an array of 2");
    }

    @Test
    void unknownDtypeIsRefusedNamingFileTensorAndDtype() throws IOException {
        refused(file("{\"w\":{\"dtype\":\"Q7\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8),
                "bad.safetensors", "tensor 'w'", "unknown dtype 'Q7'");
    }

    @Test
    void float8DtypeIsRecognisedAndRefusedClearly() throws IOException {
        refused(file("{\"w\":{\"dtype\":\"F8_E4M3\",\"shape\":[8],\"data_offsets\":[0,8]}}", 8),
                "bad.safetensors", "tensor 'w'", "dtype F8_E4M3 is not supported");
    }

    @Test
    void negativeDimensionIsRefused() throws IOException {
        refused(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}}", 8),
                "bad.safetensors", "tensor 'w'", "negative dimension -2");
    }

    @Test
    void dataOffsetsWithEndBeforeBeginAreRefused() throws IOException {
        refused(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,0]}}", 8),
                "bad.safetensors", "tensor 'w'", "data_offsets [8, 0] are not [begin, end]");
    }

    @Test
    void truncatedDataIsRefused() throws IOException {
        refused(file("{" + GOOD_W + "}", 5), "bad.safetensors", "tensor 'w'", "data_offsets end 8 is past the data section of 5 bytes");
    }

    @Test
    void byteRangeThatDisagreesWithShapeIsRefused() throws IOException {
        String message = refused(file("{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,20]}}", 20), "bad.safetensors");
        assertTrue(message.endsWith("tensor 'w': shape [2, 3] of F32 needs 24 bytes but data_offsets span 20"), message);
    }

    @Test
    void overlappingRangesAreRefused() throws IOException {
        refused(file("{" + GOOD_W + ",\"v\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8),
                "bad.safetensors", "tensor 'v' overlaps tensor 'w'");
    }

    @Test
    void gapBetweenRangesIsRefused() throws IOException {
        refused(file("{" + GOOD_W + ",\"v\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[10,11]}}", 11),
                "bad.safetensors", "gap of 2 bytes before tensor 'v'");
        refused(file("{\"v\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[3,4]}}", 4),
                "bad.safetensors", "gap of 3 bytes before tensor 'v'");
    }

    @Test
    void unusedTrailingBytesAreRefused() throws IOException {
        refused(file("{" + GOOD_W + "}", 12), "bad.safetensors", "4 unused bytes after the last tensor");
    }

    @Test
    void metadataThatIsNotStringsIsRefused() throws IOException {
        refused(file("{\"__metadata__\":{\"format\":\"pt\",\"step\":3}," + GOOD_W + "}", 8),
                "bad.safetensors", "__metadata__ value for 'step' is not a string");
        refused(file("{\"__metadata__\":\"pt\"," + GOOD_W + "}", 8), "bad.safetensors", "__metadata__ must be an object");
    }

    @Test
    void unknownTensorNameIsAnErrorNamingIt() throws Exception {
        try (SafetensorsReader reader = SafetensorsReader.open(file("{" + GOOD_W + "}", 8))) {
            ModelException e = assertThrows(ModelException.class, () -> reader.info("missing.weight"));
            assertTrue(e.getMessage().contains("bad.safetensors: no tensor named 'missing.weight'"), e.getMessage());
        }
    }

    @Test
    void floatReaderRefusesIntegerTensors() throws Exception {
        try (SafetensorsReader reader = SafetensorsReader.open(
                file("{\"ids\":{\"dtype\":\"I32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 8))) {
            ModelException e = assertThrows(ModelException.class, () -> reader.floats("ids"));
            assertTrue(e.getMessage().contains("tensor 'ids' is I32; floats() reads [F32, F16, BF16, F64]"), e.getMessage());
            assertThrows(ModelException.class, () -> reader.u8("ids"));
            assertEquals(2, reader.ints("ids").length);
        }
    }

    @Test
    void directoryWithoutAnyOrWithSeveralSafetensorsFilesIsRefused() throws IOException {
        refused(dir, dir.toString(), "found 0 .safetensors files");
        RawSafetensors.write(dir.resolve("a.safetensors"), "{}", new byte[0]);
        RawSafetensors.write(dir.resolve("b.safetensors"), "{}", new byte[0]);
        refused(dir, "found 2 .safetensors files");
        refused(dir.resolve("nope.safetensors"), "nope.safetensors", "no such safetensors file");
    }

    // ---- shard sets ----

    private Path shard(String name, String header, int dataBytes) throws IOException {
        return RawSafetensors.write(dir.resolve(name), header, new byte[dataBytes]);
    }

    private Path index(String weightMap) throws IOException {
        return Files.writeString(dir.resolve("model.safetensors.index.json"),
                "{\"metadata\":{\"total_size\":16},\"weight_map\":{" + weightMap + "}}");
    }

    @Test
    void indexNamingAMissingShardIsRefused() throws IOException {
        shard("model-00001-of-00002.safetensors", "{" + GOOD_W + "}", 8);
        index("\"w\":\"model-00001-of-00002.safetensors\",\"v\":\"model-00002-of-00002.safetensors\"");
        refused(dir, "model.safetensors.index.json", "names shard model-00002-of-00002.safetensors, which does not exist");
    }

    @Test
    void indexNamingAShardOutsideItsDirectoryIsRefused() throws IOException {
        Path inner = Files.createDirectories(dir.resolve("model"));
        shard("model-00001-of-00001.safetensors", "{" + GOOD_W + "}", 8); // exists, but one level up
        Files.writeString(inner.resolve("model.safetensors.index.json"),
                "{\"weight_map\":{\"w\":\"../model-00001-of-00001.safetensors\"}}");
        refused(inner, "model.safetensors.index.json",
                "names shard ../model-00001-of-00001.safetensors, expected a file name in the index's own directory");
    }

    @Test
    void indexEntryAbsentFromItsShardIsRefused() throws IOException {
        shard("model-00001-of-00001.safetensors", "{" + GOOD_W + "}", 8);
        index("\"w\":\"model-00001-of-00001.safetensors\",\"v\":\"model-00001-of-00001.safetensors\"");
        refused(dir, "model.safetensors.index.json", "maps tensor 'v' to model-00001-of-00001.safetensors, which does not contain it");
    }

    @Test
    void duplicateTensorAcrossShardsIsRefused() throws IOException {
        shard("model-00001-of-00002.safetensors", "{" + GOOD_W + "}", 8);
        shard("model-00002-of-00002.safetensors", "{" + GOOD_W + ",\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16);
        index("\"w\":\"model-00001-of-00002.safetensors\",\"v\":\"model-00002-of-00002.safetensors\"");
        refused(dir, "model.safetensors.index.json", "tensor 'w' appears in both model-00001-of-00002.safetensors and model-00002-of-00002.safetensors");
    }

    @Test
    void shardTensorThatTheIndexDoesNotListIsRefused() throws IOException {
        shard("model-00001-of-00001.safetensors", "{" + GOOD_W + ",\"v\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8,16]}}", 16);
        index("\"w\":\"model-00001-of-00001.safetensors\"");
        refused(dir, "tensor 'v' is in model-00001-of-00001.safetensors but the index does not list it");
    }

    @Test
    void malformedShardInsideAnIndexIsReportedWithTheShardName() throws IOException {
        shard("model-00001-of-00001.safetensors", "{" + GOOD_W + "}", 7);
        index("\"w\":\"model-00001-of-00001.safetensors\"");
        refused(dir, "model-00001-of-00001.safetensors: tensor 'w': data_offsets end 8 is past the data section of 7 bytes");
    }

    @Test
    void indexWithoutWeightMapIsRefused() throws IOException {
        Files.writeString(dir.resolve("model.safetensors.index.json"), "{\"metadata\":{}}");
        refused(dir, "model.safetensors.index.json", "needs a \"weight_map\" object");
    }
}
