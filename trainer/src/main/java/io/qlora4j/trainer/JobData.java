package io.qlora4j.trainer;

import io.qlora4j.data.DataException;
import io.qlora4j.data.DataPipeline;
import io.qlora4j.data.DatasetStats;
import io.qlora4j.data.Example;
import io.qlora4j.data.DataSettings;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.function.Consumer;

/** How a job's dataset keys become the data pipeline's settings, for training and the data preview. */
public final class JobData {
    private JobData() {}

    /**
     * The data settings of the job ({@code dataset}, {@code template}, {@code cutoff_len}, ...): {@code packing}
     * unset packs for stage pt only, as LLaMA-Factory; {@code train_sampling_strategy} sequential or
     * {@code disable_shuffling} keeps the file order, group_by_length either way groups by length.
     */
    public static DataSettings settings(JobConfig config) throws ConfigException, DataException {
        String sampling = config.string("train_sampling_strategy");
        DataSettings.Builder builder = shared(config)
                .setDatasets(List.of(config.require("dataset")))
                .optTrainOnPrompt(config.bool("train_on_prompt"))
                .optMaskHistory(config.bool("mask_history"))
                .optValSize(config.number("val_size"))
                .optGroupByLength(config.bool("group_by_length") || sampling.equals("group_by_length"))
                .optShuffle(!config.bool("disable_shuffling") && !sampling.equals("sequential"))
                .optDataSeed(dataSeed(config))
                .optBatchSize(config.integer("per_device_train_batch_size"))
                .optStreaming(config.bool("streaming"))
                .optBufferSize(config.integer("buffer_size"));
        if (config.isSet("packing")) {
            builder.optPacking(config.bool("packing"));
        }
        return builder.build();
    }

    /**
     * The data settings of the job's {@code eval_dataset}: read and rendered as the training data is (LLaMA-Factory
     * loads both through one loader: the template with its system prompt, tool format and thinking settings,
     * {@code cutoff_len}, {@code max_samples}, {@code num_samples} drawn from the job's numpy stream after the
     * training datasets' draws, and none drawn when the job streams), in file order. Scored by loss alone it is
     * labelled and packed as the training data is ({@code mask_history}, {@code train_on_prompt}, {@code packing}), as
     * LLaMA-Factory's supervised processor does for it; with {@code predict_with_generate} only the last turn's answer
     * is labelled, the answer to generate (its processor for generation), and rows are never packed.
     */
    static DataSettings evalSettings(JobConfig config) throws DataException {
        String train = config.string("dataset");
        boolean generate = config.bool("predict_with_generate");
        DataSettings.Builder builder = shared(config)
                .setDatasets(List.of(config.string("eval_dataset")))
                .optDatasetsKey("eval_dataset")
                .optSampledBefore(train == null || config.bool("streaming") ? List.of() : List.of(train))
                .optDrawsSamples(!config.bool("streaming"))
                .optMaskHistory(generate || config.bool("mask_history"))
                .optTrainOnPrompt(!generate && config.bool("train_on_prompt"));
        if (!generate && config.isSet("packing")) {
            builder.optPacking(config.bool("packing"));
        }
        return builder.build();
    }

    /** The settings that shape every dataset of the job, trained on or held out. */
    private static DataSettings.Builder shared(JobConfig config) {
        Integer maxSamples = config.integer("max_samples");
        return DataSettings.builder()
                .optDatasetDir(Path.of(config.string("dataset_dir")))
                .optTemplate(config.string("template"))
                .optCutoffLen(config.integer("cutoff_len"))
                .optMaxSamples(maxSamples == null ? 0 : maxSamples)
                .optSeed(config.integer("seed"))
                .optStage(stage(config))
                .optPreprocessingBatchSize(config.integer("preprocessing_batch_size"))
                .optPreprocessingNumWorkers(config.isSet("preprocessing_num_workers")
                        ? config.integer("preprocessing_num_workers") : 1)
                .optDefaultSystem(config.string("default_system"))
                .optToolFormat(config.string("tool_format"))
                .optEnableThinking(config.bool("enable_thinking"))
                .optPreserveThinking(config.bool("preserve_thinking"));
    }

    /**
     * The most tokens a training row holds: {@code cutoff_len}, one less when {@code packing} is set, as
     * {@link #settings} builds the pipeline (no dataset is read).
     */
    static int rowTokens(JobConfig config) {
        return DataSettings.rowTokens(config.integer("cutoff_len"),
                config.isSet("packing") ? config.bool("packing") : null);
    }

    /** The job's {@code stage} (sft or pt). */
    static DataSettings.Stage stage(JobConfig config) {
        return DataSettings.Stage.valueOf(config.string("stage").toUpperCase(Locale.ROOT));
    }

    /**
     * Warns about the records the pipeline skipped (a count per dataset) and the training examples with no token to
     * learn (every label masked, as when {@code cutoff_len} cuts the answer off), and refuses a training set in which
     * no example has one: it would train at loss 0 on nothing.
     */
    static void check(JobConfig config, DataPipeline data, Consumer<String> warn) throws DataException {
        for (DatasetStats s : data.stats()) {
            if (s.skipped() > 0) {
                warn.accept("dataset " + s.dataset() + ": skipped " + s.skipped() + " of " + (s.kept() + s.skipped())
                        + " records (broken, or not in the dataset's format)");
            }
        }
        List<Example> train = data.train();
        long empty = train.stream().filter(e -> !learns(e)).count();
        String why = " after cutoff_len " + config.integer("cutoff_len") + " (every label is masked)";
        if (!train.isEmpty() && empty == train.size()) {
            throw new DataException("dataset: none of the " + train.size() + " training examples has a token to learn"
                    + why + "; raise cutoff_len or check that the examples have answers");
        }
        if (empty > 0) {
            warn.accept(empty + " of " + train.size() + " training examples have no token to learn" + why
                    + "; they add nothing to the loss");
        }
    }

    /** Whether the example has a label the loss counts ({@code labels[1:] != -100}: the first has no prediction). */
    private static boolean learns(Example e) {
        int[] labels = e.labels();
        for (int i = 1; i < labels.length; i++) {
            if (labels[i] != Example.IGNORE_INDEX) {
                return true;
            }
        }
        return false;
    }

    /** The seed of the epoch order: {@code data_seed} when set, else {@code seed} (transformers' sampler seed). */
    static long dataSeed(JobConfig config) {
        return config.integer(config.isSet("data_seed") ? "data_seed" : "seed");
    }
}
