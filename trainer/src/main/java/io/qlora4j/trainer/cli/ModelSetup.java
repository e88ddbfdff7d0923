package io.qlora4j.trainer.cli;

import ai.djl.ndarray.NDManager;
import io.qlora4j.adapters.InitialAdapter;
import io.qlora4j.adapters.LoraAdapters;
import io.qlora4j.model.ComputeTarget;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.Tokenizer;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.trainer.JobModels;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.function.Consumer;

/**
 * The model side of a job, shared by the commands that run a model: the compute target from
 * {@code device}/{@code bf16}/{@code fp16}, and the base model loaded from {@code model_name_or_path},
 * NF4/FP4-quantized on the fly when {@code quantization_bit=4}, with the PEFT adapters of
 * {@code adapter_name_or_path} (a comma list, applied in order) on top; an adapter whose start rewrote its base
 * (PiSSA, LoftQ) gets that base rebuilt as the checkpoint loads.
 */
final class ModelSetup implements AutoCloseable {
    final ComputeTarget target;
    final NDManager manager;
    final CausalLM model;
    final Path modelDir;
    private final List<LoraAdapters> adapters;

    private ModelSetup(ComputeTarget target, NDManager manager, CausalLM model, Path modelDir,
            List<LoraAdapters> adapters) {
        this.target = target;
        this.manager = manager;
        this.model = model;
        this.modelDir = modelDir;
        this.adapters = adapters;
    }

    static ModelSetup load(JobConfig config, PrintWriter err) throws ConfigException, ModelException {
        Path dir = Path.of(config.require("model_name_or_path"));
        Consumer<String> warn = line -> err.println("warning: " + line);
        ComputeTarget target = JobModels.target(config, warn);
        NDManager manager = NDManager.newBaseManager(target.device());
        try {
            List<Path> adapterDirs = new ArrayList<>();
            String adapterKey = config.string("adapter_name_or_path");
            if (adapterKey != null) {
                for (String adapter : adapterKey.split(",")) {
                    adapterDirs.add(Path.of(adapter.trim()));
                }
            }
            InitialAdapter start = adapterDirs.isEmpty() ? null
                    : InitialAdapter.of(adapterDirs, ModelFamilies.read(dir.resolve("config.json")));
            CausalLM model = JobModels.loader(config, target.dataType(), start, warn).load(dir, manager);
            List<LoraAdapters> adapters = new ArrayList<>();
            for (Path adapter : adapterDirs) {
                adapters.add(LoraAdapters.load(adapter, model, manager, start));
            }
            return new ModelSetup(target, manager, model, dir, adapters);
        } catch (ModelException | RuntimeException e) {
            manager.close();
            throw e;
        }
    }

    /** The model's tokenizer, checked against the model's vocabulary. */
    Tokenizer tokenizer() throws ModelException {
        return Tokenizer.forModel(modelDir, model.config().vocabSize());
    }

    @Override
    public void close() {
        adapters.forEach(LoraAdapters::close);
        model.close();
        manager.close();
    }
}
