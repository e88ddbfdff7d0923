package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import io.qlora4j.adapters.LoraAdapters;
import io.qlora4j.adapters.LoraSettings;
import io.qlora4j.data.Batch;
import io.qlora4j.model.checkpoint.TinyModels;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.optim.AdamW;
import io.qlora4j.optim.Gradients;
import io.qlora4j.optim.Optim;
import io.qlora4j.optim.Parameter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** The README's "Java API in ten lines", run as written on the tiny test model. */
class JavaApiExampleTest {
    @TempDir
    Path dir;

    @Test
    void readmeExampleTrainsAndSavesAnAdapter() throws Exception {
        Path base = TinyModels.writeTinyModel(dir);
        long[] ids = {1, 5, 9, 3, 30, 31, 2};
        long[] labels = {-100, -100, -100, -100, 30, 31, 2};
        List<Batch> batches = List.of(new Batch(1, 7, ids, new long[] {1, 1, 1, 1, 1, 1, 1},
                new long[] {0, 1, 2, 3, 4, 5, 6}, labels));
        double first = Double.NaN;
        double last = Double.NaN;
        try (NDManager manager = NDManager.newBaseManager()) {
            // --- README ---
            CausalLM model = ModelLoader.builder().optFormat(BaseFormats.QLORA)            // NF4 + DQ
                    .build().load(base, manager);
            LoraAdapters lora = LoraAdapters.attach(model, new LoraSettings(8, 16, 0.0, false, List.of("all")), manager, 42);
            List<Parameter> params = lora.parameters().entrySet().stream().map(e -> new Parameter(e.getKey(), e.getValue())).toList();
            TrainStep step = TrainStep.builder(model).build();                  // recompute block by block
            AdamW adamw = AdamW.builder().optOptim(Optim.PAGED_ADAMW_32BIT).build();
            for (int s = 0; s < 20; s++) {
                double loss = step.accumulate(batches, s);                      // forward + backward over the micro-batches
                Gradients.clipGlobalNorm(params, 0.3);
                adamw.step(params, 2e-2);
                Gradients.zero(params);
                first = s == 0 ? loss : first;
                last = loss;
            }
            lora.save(dir.resolve("adapter"), base.toString(), BaseFormats.QLORA); // loads in Python PEFT
            // --- end ---
            adamw.close();
            lora.close();
            model.close();
        }
        assertTrue(last < first - 0.05, first + " -> " + last);
        assertTrue(Files.exists(dir.resolve("adapter/adapter_model.safetensors")));
    }
}
