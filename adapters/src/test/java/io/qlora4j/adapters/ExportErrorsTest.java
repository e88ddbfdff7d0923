package io.qlora4j.adapters;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.checkpoint.CheckpointQuantizer;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.checkpoint.TinyModels;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.safetensors.TensorInfo;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** What a user can get wrong is refused in one line naming what is at fault, and leaves no export behind. */
class ExportErrorsTest {
    @TempDir
    Path dir;

    @Test
    void adapterWhoseShapesDoNotFitTheBaseNamesTheTensor() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        Path adapter = handWritten("[\"q_proj\"]", "model.layers.0.self_attn.q_proj", new long[] {4, 65},
                new long[] {TinyModels.HIDDEN, 4});
        String message = refusal(base, adapter);
        assertTrue(message.contains("'base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight' has shape [4, 65]")
                && message.contains("needs [4, 64]"), message);
    }

    @Test
    void adapterForAnotherArchitectureIsRefusedByItsModuleNames() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        Path adapter = handWritten("[\"query_key_value\"]", "gpt_neox.layers.0.attention.query_key_value",
                new long[] {4, 64}, new long[] {192, 4});
        String message = refusal(base, adapter);
        assertTrue(message.contains("target module 'query_key_value' is not a linear layer of this model"), message);
    }

    @Test
    void originalMergeOfABitsandbytesBaseIsRefused() throws Exception {
        Path nf4 = dir.resolve("nf4");
        CheckpointQuantizer.builder(BaseFormats.QLORA).build().quantize(TinyModels.writeTinyModel(dir), nf4);
        Path adapter = ExportFixtures.adapter(nf4, dir.resolve("adapter"), null, 1);
        ModelException e = assertThrows(ModelException.class,
                () -> MergedExport.builder(nf4, List.of(adapter)).optMergeBase(MergeBase.ORIGINAL).build());
        assertEquals(nf4 + ": merge_base original needs full-precision weights, but this checkpoint stores its"
                + " projections in bitsandbytes NF4+DQ, blocksize 64; use merge_base dequantized", e.getMessage());
    }

    @Test
    void adaptersWhoseStartRewroteTheBaseAreRefusedWhereThatBaseCannotBeRebuilt() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        Path pissa = ExportFixtures.adapter(base, dir.resolve("pissa"), BaseFormats.QLORA, 1,
                ExportFixtures.SETTINGS.withInit(AdapterInits.pissa(1)));
        Path lora = ExportFixtures.adapter(base, dir.resolve("lora"), BaseFormats.QLORA, 2);
        ModelException e = assertThrows(ModelException.class, () -> MergedExport.builder(base, List.of(lora, pissa)).build());
        assertTrue(e.getMessage().startsWith(pissa + ": PiSSA (randomised SVD, 1 iteration) rewrote the base")
                && e.getMessage().contains("cannot be combined with other adapters"), e.getMessage());

        Path nf4 = dir.resolve("nf4");
        CheckpointQuantizer.builder(BaseFormats.QLORA).build().quantize(base, nf4);
        e = assertThrows(ModelException.class, () -> MergedExport.builder(nf4, List.of(pissa)).build());
        assertTrue(e.getMessage().contains("rebuilds its base from full-precision weights"), e.getMessage());

        Path loftq = ExportFixtures.adapter(base, dir.resolve("loftq"), BaseFormats.QLORA, 3,
                ExportFixtures.SETTINGS.withInit(AdapterInits.loftq(4, 1)));
        e = assertThrows(ModelException.class,
                () -> MergedExport.builder(base, List.of(loftq)).optMergeBase(MergeBase.ORIGINAL).build());
        assertTrue(e.getMessage().contains("LoftQ's base is the quantized residual itself"), e.getMessage());
    }

    @Test
    void existingNonEmptyExportDirIsRefusedAndLeftAsItWas() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        Path adapter = ExportFixtures.adapter(base, dir.resolve("adapter"), null, 2);
        Path parent = Files.createDirectories(dir.resolve("exports"));
        Path out = Files.createDirectories(parent.resolve("merged"));
        Files.writeString(out.resolve("notes.txt"), "keep me");
        MergedExport export = MergedExport.builder(base, List.of(adapter)).build();
        ModelException e = assertThrows(ModelException.class, () -> export.writeTo(out));
        assertEquals(out + ": exists and is not empty; choose another export_dir or remove it", e.getMessage());
        assertEquals("keep me", Files.readString(out.resolve("notes.txt")));
        assertEquals(List.of("merged"), list(parent));
        assertEquals(List.of("notes.txt"), list(out));
    }

    @Test
    void exportFailingHalfwayLeavesNoExportDirectory() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        Path adapter = ExportFixtures.adapter(base, dir.resolve("adapter"), null, 3);
        // The same checkpoint with its last projection stored as integers: the shapes check, the data cannot merge.
        Path broken = Files.createDirectories(dir.resolve("broken"));
        Files.copy(base.resolve("config.json"), broken.resolve("config.json"));
        String last = "model.layers.0.mlp.down_proj.weight";
        try (SafetensorsReader in = SafetensorsReader.open(base);
                SafetensorsWriter w = SafetensorsWriter.builder(broken).build()) {
            for (TensorInfo t : in.tensors()) {
                if (t.name().equals(last)) {
                    w.addBytes(last, DType.I16, t.shape(), new byte[(int) t.byteSize()]);
                } else {
                    w.add(t.name(), t.dtype(), t.shape(), in.bytes(t.name()));
                }
            }
        }
        Path parent = Files.createDirectories(dir.resolve("exports"));
        MergedExport export = MergedExport.builder(broken, List.of(adapter)).build();
        ModelException e = assertThrows(ModelException.class, () -> export.writeTo(parent.resolve("merged")));
        assertTrue(e.getMessage().contains(last), e.getMessage());
        assertEquals(List.of(), list(parent), "neither the export nor its staging directory is left");
    }

    /** An adapter directory with one module's A and B of the given shapes, under {@code module}'s PEFT keys. */
    private Path handWritten(String targets, String module, long[] a, long[] b) throws Exception {
        Path adapter = Files.createDirectories(dir.resolve("hand"));
        Files.writeString(adapter.resolve("adapter_config.json"),
                "{\"peft_type\": \"LORA\", \"r\": 4, \"lora_alpha\": 8, \"target_modules\": " + targets + "}");
        try (SafetensorsWriter w = SafetensorsWriter.builder(adapter).optBaseName("adapter_model").build()) {
            w.addFloats("base_model.model." + module + ".lora_A.weight", DType.F32, a, new float[(int) (a[0] * a[1])]);
            w.addFloats("base_model.model." + module + ".lora_B.weight", DType.F32, b, new float[(int) (b[0] * b[1])]);
        }
        return adapter;
    }

    /** The one-line message building an export of {@code base} with {@code adapter} fails with. */
    private static String refusal(Path base, Path adapter) {
        ModelException e = assertThrows(ModelException.class, () -> MergedExport.builder(base, List.of(adapter)).build());
        assertEquals(1, e.getMessage().lines().count(), e.getMessage());
        assertTrue(e.getMessage().startsWith(adapter.toString()), e.getMessage());
        return e.getMessage();
    }

    private static List<String> list(Path dir) throws Exception {
        try (Stream<Path> files = Files.list(dir)) {
            return files.map(p -> p.getFileName().toString()).sorted().toList();
        }
    }
}
