package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;

import ai.djl.ndarray.NDManager;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.trainer.plan.MemoryPlan;
import io.qlora4j.trainer.plan.MemoryPlanner;
import io.qlora4j.trainer.plan.ModelShape;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.Arguments;
import org.junit.jupiter.params.provider.MethodSource;

/** The planned weight bytes (base projections, tables and norms) are what the loaded model holds. */
class PlannedWeightsTest {
    @TempDir
    Path dir;

    static Stream<Arguments> formatsAndDtypes() {
        List<Arguments> all = new ArrayList<>();
        List<BaseFormat> formats = new ArrayList<>(BaseFormats.menu());
        formats.add(BaseFormats.DENSE);
        for (BaseFormat f : formats) {
            all.add(Arguments.of(f, DType.F32));
            all.add(Arguments.of(f, DType.BF16));
        }
        return all.stream();
    }

    @ParameterizedTest
    @MethodSource("formatsAndDtypes")
    void plannedWeightBytesAreWhatTheLoadedModelHolds(BaseFormat format, DType dtype) throws Exception {
        Path model = TinyModel.write(dir, 3, 64, dtype);
        if (dtype == DType.BF16) {
            // as transformers writes a bfloat16 checkpoint's config: the planner reads the tables' width from it
            Path config = model.resolve("config.json");
            Files.writeString(config, Files.readString(config).replaceFirst("\\{", "{\"torch_dtype\": \"bfloat16\", "));
        }
        ModelShape shape = ModelShape.of(ModelFamilies.read(model.resolve("config.json")));
        MemoryPlan plan = MemoryPlanner.builder(shape).optFormat(format).build().plan();
        try (NDManager m = NDManager.newBaseManager(); CausalLM loaded = ModelLoader.builder().optFormat(format)
                .build().load(model, m)) {
            assertEquals(loaded.bytes(), plan.part("base_weights").bytes() + plan.part("embeddings_head_norms").bytes(),
                    format.describe() + " over " + dtype);
        }
    }
}
