package io.qlora4j.trainer;

import ai.djl.ndarray.types.DataType;
import io.qlora4j.model.ComputeTarget;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.llama.LlamaLoader;
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.QuantType;
import io.qlora4j.trainer.config.JobConfig;
import java.util.function.Consumer;

/** How a job's keys choose the compute target and the base-model loader, for every command that runs a model. */
public final class JobModels {
    private JobModels() {}

    /** The target from {@code device}, {@code bf16} and {@code fp16}; each warning line goes to {@code warn}. */
    public static ComputeTarget target(JobConfig config, Consumer<String> warn) throws ModelException {
        return ComputeTarget.resolve(config.string("device"), config.bool("bf16"), config.bool("fp16"), warn);
    }

    /**
     * A loader that quantizes the block linears on the fly when {@code quantization_bit=4} (with
     * {@code quantization_type}, {@code quantization_blocksize}, {@code double_quantization}), else keeps them dense;
     * {@code finetuning_type: full} trains embed_tokens and lm_head, so it keeps them float32. The model computes in
     * {@code computeType} (a {@link ComputeTarget}'s).
     */
    public static LlamaLoader loader(JobConfig config, DataType computeType) {
        LlamaLoader.Builder builder = LlamaLoader.builder()
                .optFloat32Embeddings(config.string("finetuning_type").equals("full"))
                .optComputeType(computeType);
        if (config.integer("quantization_bit") != null) {
            builder.optQuantizer(BlockwiseQuantizer.builder()
                    .optType(QuantType.fromName(config.string("quantization_type")))
                    .optBlocksize(config.integer("quantization_blocksize"))
                    .optDoubleQuant(config.bool("double_quantization"))
                    .build());
        }
        return builder.build();
    }
}
