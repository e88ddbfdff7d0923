package io.qlora4j.trainer;

import io.qlora4j.data.DataException;
import io.qlora4j.data.DataSettings;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/** How a job's dataset keys become the data pipeline's settings, for training and the data preview. */
public final class JobData {
    private JobData() {}

    /** The data settings of the job ({@code dataset}, {@code template}, {@code cutoff_len}, ...). */
    public static DataSettings settings(JobConfig config) throws ConfigException, DataException {
        Integer maxSamples = config.integer("max_samples");
        return DataSettings.builder()
                .setDatasets(List.of(config.require("dataset")))
                .optDatasetDir(Path.of(config.string("dataset_dir")))
                .optTemplate(config.string("template"))
                .optCutoffLen(config.integer("cutoff_len"))
                .optTrainOnPrompt(config.bool("train_on_prompt"))
                .optMaskHistory(config.bool("mask_history"))
                .optMaxSamples(maxSamples == null ? 0 : maxSamples)
                .optValSize(config.number("val_size"))
                .optPacking(config.bool("packing"))
                .optGroupByLength(config.bool("group_by_length"))
                .optSeed(config.integer("seed"))
                .optBatchSize(config.integer("per_device_train_batch_size"))
                .optStage(stage(config))
                .build();
    }

    /** The job's {@code stage} (sft or pt). */
    static DataSettings.Stage stage(JobConfig config) {
        return DataSettings.Stage.valueOf(config.string("stage").toUpperCase(Locale.ROOT));
    }
}
