package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.checkpoint.TinyModels;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.TreeSet;
import java.util.stream.Collectors;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The files of an export: names, shapes and dtypes as the input's, shards within budget, config, card, ties. */
class ExportFormatTest {
    private static final ObjectMapper JSON = new ObjectMapper();

    @TempDir
    Path dir;

    @Test
    void shardedExportKeepsEveryNameShapeAndDtypeAndStaysWithinTheShardBudget() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        Path adapter = ExportFixtures.adapter(base, dir.resolve("adapter"), null, 1);
        Path out = dir.resolve("merged");
        long budget = 20_000;
        MergedExport.Report report = MergedExport.builder(base, List.of(adapter)).optMaxShardBytes(budget).build()
                .writeTo(out);
        try (SafetensorsReader in = SafetensorsReader.open(base); SafetensorsReader merged = SafetensorsReader.open(out)) {
            assertEquals(names(in), names(merged));
            long total = 0;
            Map<Path, Long> shardBytes = new HashMap<>();
            for (TensorInfo t : merged.tensors()) {
                assertArrayEquals(in.info(t.name()).shape(), t.shape(), t.name());
                assertEquals(DType.BF16, t.dtype(), t.name());
                total += t.byteSize();
                shardBytes.merge(t.file(), t.byteSize(), Long::sum);
            }
            JsonNode index = JSON.readTree(out.resolve("model.safetensors.index.json").toFile());
            assertEquals(total, index.path("metadata").path("total_size").asLong());
            assertEquals(total, report.bytesWritten());
            assertTrue(shardBytes.size() >= 4, "shards: " + shardBytes.size());
            shardBytes.forEach((shard, bytes) -> assertTrue(bytes <= budget, shard + " holds " + bytes + " bytes"));
            assertEquals(in.bytes("model.embed_tokens.weight"), merged.bytes("model.embed_tokens.weight"),
                    "a tensor no adapter touches is copied byte for byte");
        }
        JsonNode config = JSON.readTree(out.resolve("config.json").toFile());
        assertFalse(config.has("quantization_config"));
        assertEquals("bfloat16", config.get("torch_dtype").asText());
        assertEquals(Files.readString(base.resolve("tokenizer.json")), Files.readString(out.resolve("tokenizer.json")));
        String card = Files.readString(out.resolve("README.md"));
        assertTrue(card.contains("`" + base + "`") && card.contains("`" + adapter + "`: r 4, alpha 8.0"), card);
        assertTrue(card.contains("- Merge base: original"), card);
    }

    @Test
    void tiedEmbeddingsStayTiedAndNoLmHeadIsWritten() throws Exception {
        Path tied = tiedCopy(TinyModels.writeTinyModel(dir), dir.resolve("tied"));
        Path adapter = ExportFixtures.adapter(tied, dir.resolve("adapter"), null, 2);
        Path out = dir.resolve("merged");
        MergedExport.builder(tied, List.of(adapter)).optDtype(DType.F32).build().writeTo(out);
        try (SafetensorsReader in = SafetensorsReader.open(tied); SafetensorsReader merged = SafetensorsReader.open(out)) {
            assertEquals(names(in), names(merged));
            assertFalse(merged.contains("lm_head.weight"));
        }
        assertTrue(JSON.readTree(out.resolve("config.json").toFile()).get("tie_word_embeddings").asBoolean());
        float[] expected = ExportFixtures.logits(tied, null, adapter);
        assertTrue(ExportFixtures.maxDifference(expected, ExportFixtures.logits(out)) <= 1e-5);
    }

    @Test
    void exportDirectoryAppearsOnlyWhenCompleteAndNothingElseIsLeftBeside() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        Path adapter = ExportFixtures.adapter(base, dir.resolve("adapter"), null, 3);
        Path parent = Files.createDirectories(dir.resolve("exports"));
        MergedExport.builder(base, List.of(adapter)).build().writeTo(parent.resolve("merged"));
        try (Stream<Path> left = Files.list(parent)) {
            assertEquals(List.of("merged"), left.map(p -> p.getFileName().toString()).toList());
        }
        try (Stream<Path> files = Files.list(parent.resolve("merged"))) {
            assertEquals(Set.of("config.json", "model.safetensors", "tokenizer.json", "README.md"),
                    files.map(p -> p.getFileName().toString()).collect(Collectors.toSet()));
        }
    }

    /** {@code model} with {@code tie_word_embeddings: true} and without lm_head, as a tied checkpoint is stored. */
    private static Path tiedCopy(Path model, Path target) throws Exception {
        Files.createDirectories(target);
        ObjectNode config = (ObjectNode) JSON.readTree(model.resolve("config.json").toFile());
        config.put("tie_word_embeddings", true);
        JSON.writeValue(target.resolve("config.json").toFile(), config);
        try (SafetensorsReader in = SafetensorsReader.open(model);
                SafetensorsWriter w = SafetensorsWriter.builder(target).build()) {
            for (TensorInfo t : in.tensors()) {
                if (!t.name().equals("lm_head.weight")) {
                    w.add(t.name(), t.dtype(), t.shape(), in.bytes(t.name()));
                }
            }
        }
        return target;
    }

    private static Set<String> names(SafetensorsReader reader) {
        return reader.tensors().stream().map(TensorInfo::name).collect(Collectors.toCollection(TreeSet::new));
    }
}
