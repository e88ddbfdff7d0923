package io.qlora4j.trainer;

import ai.djl.ndarray.NDManager;
import io.qlora4j.model.llama.LlamaModel;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.nio.file.Path;

/** LoRA adapters on a frozen base (placeholder until the adapters module lands). */
final class LoraWeights {
    private LoraWeights() {}

    static TrainableWeights create(JobConfig config, LlamaModel model, NDManager manager, Path checkpoint)
            throws ConfigException {
        throw new ConfigException("finetuning_type: lora is not wired yet");
    }
}
