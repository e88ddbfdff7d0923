package io.qlora4j.data;

import java.nio.file.Path;
import java.util.List;

/**
 * The data settings of a job, in LLaMA-Factory's terms: {@code dataset} (names in
 * {@code dataset_dir/dataset_info.json} or direct file paths), {@code template}, {@code cutoff_len} (one less
 * when {@code packing} is set, as LLaMA-Factory applies it),
 * {@code train_on_prompt}, {@code mask_history}, {@code max_samples} (per dataset, 0 = all),
 * {@code val_size} (a fraction below 1 or a count), {@code packing}, {@code group_by_length},
 * {@code seed} (the split's and, unless {@code data_seed} is set, the epoch order's), {@code data_seed},
 * {@code per_device_train_batch_size}, {@code stage}, {@code streaming} (read the
 * files each epoch instead of holding the examples; shuffled through a buffer of
 * {@code buffer_size}), and the template adjustments {@code default_system}, {@code tool_format},
 * {@code enable_thinking}, {@code preserve_thinking}, {@code disable_shuffling} (as {@code shuffle} false) and
 * {@code preprocessing_batch_size} (records packed together) and {@code preprocessing_num_workers} (the contiguous
 * shards those groups are cut from, as Hugging Face datasets' {@code map(num_proc=...)} cuts them; 0 or 1 for one),
 * and {@code sampledBefore}, the datasets LLaMA-Factory loads before these ones in the same job (the training ones,
 * for an {@code eval_dataset}), whose {@code num_samples} draws come first from the job's numpy stream, and
 * {@code drawsSamples}, whether datasets' {@code num_samples} are drawn at all (LLaMA-Factory draws none in a streaming
 * job, its held-out datasets included).
 * {@code datasetsKey} is the job key the datasets were given by ({@code dataset}, or {@code eval_dataset} for a
 * held-out set), which a refusal of one of them names. Build with {@link #builder()}.
 */
public record DataSettings(
        List<String> datasets,
        Path datasetDir,
        String template,
        int cutoffLen,
        boolean trainOnPrompt,
        boolean maskHistory,
        int maxSamples,
        double valSize,
        boolean packing,
        boolean groupByLength,
        long seed,
        long dataSeed,
        int batchSize,
        Stage stage,
        boolean streaming,
        int bufferSize,
        String defaultSystem,
        String toolFormat,
        boolean enableThinking,
        boolean preserveThinking,
        boolean shuffle,
        int preprocessingBatchSize,
        int preprocessingNumWorkers,
        List<String> sampledBefore,
        boolean drawsSamples,
        String datasetsKey) {

    /** The training stage: supervised fine-tuning or plain-text (pre)training. */
    public enum Stage {
        /** Supervised fine-tuning on conversations ({@code stage: sft}). */
        SFT,
        /** Causal language modelling on plain text ({@code stage: pt}). */
        PT
    }

    /**
     * A builder with LLaMA-Factory's defaults: dataset_dir {@code data}, no template (the tokenizer's chat
     * template, else {@code empty}), cutoff_len 2048, seed 42, batch 1, stage sft, packing on for pt only, no
     * streaming, thinking enabled.
     */
    public static Builder builder() {
        return new Builder();
    }

    /**
     * The most tokens a row holds for {@code cutoff_len} and the {@code packing} key as written (null: unset):
     * LLaMA-Factory's DataArguments takes one token off cutoff_len when packing is set, before the parser turns
     * packing on for stage pt, so pt's default packing keeps the whole cutoff_len. What {@link #cutoffLen} holds,
     * and what a memory plan sizes a row by without reading the data.
     */
    public static int rowTokens(int cutoffLen, Boolean packing) {
        return Boolean.TRUE.equals(packing) ? Math.max(cutoffLen - 1, 1) : cutoffLen;
    }

    /** Builds {@link DataSettings}; {@code opt*} setters for everything that has a default. */
    public static final class Builder {
        private List<String> datasets = List.of();
        private String datasetsKey = "dataset";
        private Path datasetDir = Path.of("data");
        private String template;
        private int cutoffLen = 2048;
        private boolean trainOnPrompt;
        private boolean maskHistory;
        private int maxSamples;
        private double valSize;
        private Boolean packing;
        private boolean groupByLength;
        private long seed = 42;
        private Long dataSeed;
        private int batchSize = 1;
        private Stage stage = Stage.SFT;
        private boolean streaming;
        private int bufferSize = 16384;
        private String defaultSystem;
        private String toolFormat;
        private boolean enableThinking = true;
        private boolean preserveThinking;
        private boolean shuffle = true;
        private int preprocessingBatchSize = 1000;
        private int preprocessingNumWorkers;
        private List<String> sampledBefore = List.of();
        private boolean drawsSamples = true;

        private Builder() {
        }

        /** Dataset names (dataset_info.json) or file/folder paths; a single string may be a comma list. */
        public Builder setDatasets(List<String> names) {
            datasets = split(names);
            return this;
        }

        /**
         * Whether the datasets' {@code num_samples} are drawn (default true); false reads them whole, as LLaMA-Factory
         * reads every dataset of a streaming job, a held-out one too. A streamed dataset is never sampled either way.
         */
        public Builder optDrawsSamples(boolean value) {
            drawsSamples = value;
            return this;
        }

        /** Names with comma lists split and blanks dropped. */
        private static List<String> split(List<String> names) {
            return names.stream().flatMap(n -> List.of(n.split(",")).stream()).map(String::trim)
                    .filter(n -> !n.isEmpty()).toList();
        }

        /**
         * The datasets the job loads before these ones (names or paths, a single string may be a comma list; default
         * none): their {@code num_samples} draws come first from the job's numpy stream, as LLaMA-Factory loads an
         * {@code eval_dataset} after the training datasets with one global generator.
         */
        public Builder optSampledBefore(List<String> names) {
            sampledBefore = split(names);
            return this;
        }

        /** The job key the datasets come from, {@code dataset} by default, which a refusal of one of them names. */
        public Builder optDatasetsKey(String key) {
            datasetsKey = key;
            return this;
        }

        /** The folder holding dataset_info.json and the dataset files ({@code dataset_dir}). */
        public Builder optDatasetDir(Path dir) {
            datasetDir = dir;
            return this;
        }

        /** The chat template name ({@code template}); null: the tokenizer's chat template, else {@code empty}. */
        public Builder optTemplate(String name) {
            template = name;
            return this;
        }

        /** The maximum tokens of an example ({@code cutoff_len}). */
        public Builder optCutoffLen(int tokens) {
            cutoffLen = tokens;
            return this;
        }

        /** Also train on prompt tokens ({@code train_on_prompt}). */
        public Builder optTrainOnPrompt(boolean on) {
            trainOnPrompt = on;
            return this;
        }

        /** Train only on the last assistant turn ({@code mask_history}). */
        public Builder optMaskHistory(boolean on) {
            maskHistory = on;
            return this;
        }

        /** Keep at most this many records of each dataset, 0 for all ({@code max_samples}). */
        public Builder optMaxSamples(int records) {
            maxSamples = records;
            return this;
        }

        /** Held-out share (below 1) or count (above 1; 1 only when streaming) of the examples ({@code val_size}). */
        public Builder optValSize(double size) {
            valSize = size;
            return this;
        }

        /** Pack examples into cutoff_len rows ({@code packing}); default on for pt, off for sft. */
        public Builder optPacking(boolean on) {
            packing = on;
            return this;
        }

        /** Group examples of similar length into batches ({@code group_by_length}). */
        public Builder optGroupByLength(boolean on) {
            groupByLength = on;
            return this;
        }

        /** The seed of the shuffle and the validation split ({@code seed}). */
        public Builder optSeed(long value) {
            seed = value;
            return this;
        }

        /** The seed of the epoch order alone ({@code data_seed}, transformers' sampler seed); default: the seed. */
        public Builder optDataSeed(long value) {
            dataSeed = value;
            return this;
        }

        /** Examples per micro-batch ({@code per_device_train_batch_size}). */
        public Builder optBatchSize(int examples) {
            batchSize = examples;
            return this;
        }

        /** The training stage ({@code stage}). */
        public Builder optStage(Stage value) {
            stage = value;
            return this;
        }

        /** Stream the files each epoch instead of holding all examples in memory ({@code streaming}). */
        public Builder optStreaming(boolean on) {
            streaming = on;
            return this;
        }

        /** Examples in the shuffle buffer when streaming ({@code buffer_size}, default 16384). */
        public Builder optBufferSize(int examples) {
            bufferSize = examples;
            return this;
        }

        /** The system prompt used when a record has none, instead of the template's ({@code default_system}). */
        public Builder optDefaultSystem(String text) {
            defaultSystem = text;
            return this;
        }

        /** The tool format of function calls and tool descriptions, instead of the template's ({@code tool_format}). */
        public Builder optToolFormat(String name) {
            toolFormat = name;
            return this;
        }

        /** Reasoning templates: train the thought blocks (true) or remove them ({@code enable_thinking}). */
        public Builder optEnableThinking(boolean on) {
            enableThinking = on;
            return this;
        }

        /** Reasoning templates with mask_history: keep the thoughts of earlier answers ({@code preserve_thinking}). */
        public Builder optPreserveThinking(boolean on) {
            preserveThinking = on;
            return this;
        }

        /** Shuffle the training examples each epoch (false: file order, {@code disable_shuffling}). */
        public Builder optShuffle(boolean on) {
            shuffle = on;
            return this;
        }

        /** Records processed, and packed, together ({@code preprocessing_batch_size}, default 1000). */
        public Builder optPreprocessingBatchSize(int records) {
            preprocessingBatchSize = records;
            return this;
        }

        /**
         * Processes LLaMA-Factory tokenizes in ({@code preprocessing_num_workers}, default none): datasets' {@code map}
         * cuts the records into that many contiguous shards and groups each apart, so packed rows and pt blocks never
         * span two shards (without streaming; a streamed dataset is mapped in one piece).
         */
        public Builder optPreprocessingNumWorkers(int processes) {
            preprocessingNumWorkers = processes;
            return this;
        }

        /** Checks the values and builds the settings. */
        public DataSettings build() throws DataException {
            if (datasets.isEmpty()) {
                throw new DataException(datasetsKey + ": no dataset given");
            }
            if (cutoffLen < 1) {
                throw new DataException("cutoff_len: " + cutoffLen + " must be at least 1");
            }
            if (batchSize < 1) {
                throw new DataException("per_device_train_batch_size: " + batchSize + " must be at least 1");
            }
            if (maxSamples < 0) {
                throw new DataException("max_samples: " + maxSamples + " must not be negative");
            }
            if (valSize < 0 || (valSize > 1 && valSize != Math.rint(valSize))) {
                throw new DataException("val_size: " + valSize + " must be a fraction below 1 or a whole count");
            }
            if (maskHistory && trainOnPrompt) {
                throw new DataException("mask_history: incompatible with train_on_prompt");
            }
            if (preprocessingBatchSize < 1) {
                throw new DataException("preprocessing_batch_size: " + preprocessingBatchSize + " must be at least 1");
            }
            if (preprocessingNumWorkers < 0) {
                throw new DataException("preprocessing_num_workers: " + preprocessingNumWorkers + " must not be negative");
            }
            if (bufferSize < 1) {
                throw new DataException("buffer_size: " + bufferSize + " must be at least 1");
            }
            if (streaming && valSize > 1e-6 && valSize < 1) {
                throw new DataException("val_size: " + valSize + " must be a whole count when streaming");
            }
            if (!streaming && valSize == 1) {
                throw new DataException("val_size: 1 is neither a fraction below 1 nor a count above 1 (LLaMA-Factory"
                        + " hands train_test_split test_size=1.0, which it refuses)");
            }
            if (!streaming && valSize > 1e-6 && seed < 0) {
                throw new DataException("seed: " + seed + " must not be negative with val_size (the split is"
                        + " numpy.random.default_rng(seed)'s, which refuses it)");
            }
            if (streaming && groupByLength) {
                throw new DataException("group_by_length: needs every length up front; incompatible with streaming");
            }
            boolean pack = packing != null ? packing : stage == Stage.PT;
            return new DataSettings(datasets, datasetDir, template, rowTokens(cutoffLen, packing), trainOnPrompt, maskHistory, maxSamples,
                    valSize, pack, groupByLength, seed, dataSeed != null ? dataSeed : seed, batchSize, stage, streaming,
                    bufferSize, defaultSystem, toolFormat,
                    enableThinking, preserveThinking, shuffle, preprocessingBatchSize,
                    streaming ? 1 : Math.max(1, preprocessingNumWorkers), sampledBefore, drawsSamples, datasetsKey);
        }
    }
}
