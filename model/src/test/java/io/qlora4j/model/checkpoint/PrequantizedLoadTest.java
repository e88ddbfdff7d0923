package io.qlora4j.model.checkpoint;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.QuantizedLinear;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class PrequantizedLoadTest {
    @TempDir
    Path dir;

    private static float[] logits(CausalLM model, NDManager m) {
        long[] ids = {1, 7, 3, 49, 12, 0};
        return model.forward(m.create(ids, new Shape(1, ids.length)), null).toFloatArray();
    }

    @Test
    void quantizedCheckpointLoadsToTheSameModelAsQuantizingOnTheFly() throws Exception {
        Path source = TinyModels.writeTinyModel(dir);
        Path nf4 = dir.resolve("nf4");
        CheckpointQuantizer.builder(BaseFormats.QLORA).build().quantize(source, nf4);
        try (NDManager m = NDManager.newBaseManager();
                CausalLM stored = ModelLoader.builder().build().load(nf4, m);
                CausalLM onTheFly = ModelLoader.builder().optFormat(BaseFormats.QLORA).build()
                        .load(source, m)) {
            assertArrayEquals(logits(onTheFly, m), logits(stored, m));
            assertTrue(stored.block(0).linear("mlp.down_proj") instanceof QuantizedLinear);
        }
    }

    @Test
    void quantizedTensorOfTheWrongShapeIsNamed() throws Exception {
        Path source = TinyModels.writeTinyModel(dir);
        Path nf4 = dir.resolve("nf4");
        CheckpointQuantizer.builder(BaseFormats.QLORA).build().quantize(source, nf4);
        Path config = nf4.resolve("config.json");
        Files.writeString(config, Files.readString(config).replace("\"intermediate_size\" : 96", "\"intermediate_size\" : 128"));
        try (NDManager m = NDManager.newBaseManager()) {
            ModelException e = assertThrows(ModelException.class, () -> ModelLoader.builder().build().load(nf4, m));
            assertTrue(e.getMessage().contains("bitsandbytes NF4+DQ, blocksize 64 weight model.layers.0.mlp.gate_proj has shape [96, 64], "
                    + "expected [128, 64]"), e.getMessage());
        }
    }
}
