package io.qlora4j.data;

import java.io.IOException;
import java.util.AbstractList;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Set;

/**
 * The data side of a training job, built from {@link DataSettings} and a tokenizer: reads the
 * datasets, formats them with the chat template, tokenizes them with -100 label masks, holds out
 * the validation split and hands out resumable micro-batches.
 *
 * <p>The {@code val_size} split of examples in memory is LLaMA-Factory's: datasets'
 * {@code train_test_split(test_size=val_size, seed=seed)} over the examples left after preprocessing (records
 * skipped as broken are not counted). With {@code p = numpy.random.default_rng(seed).permutation(n)}
 * ({@link NumpyPermutation}), the held-out examples are {@code p[:n_test]} and the training examples
 * {@code p[n_test:]}, each in that order. When streaming, the held-out examples are the first {@code val_size} in
 * file order and the rest are shuffled through the buffer; LLaMA-Factory {@code take}s them from its shuffled
 * stream, so with streaming the held-out records are not LLaMA-Factory's.
 */
public final class DataPipeline {

    private final DataSettings settings;
    private final TemplateTokenizer tokenizer;
    private final EpochSource epochs;
    private final List<Example> train;
    private final List<Example> eval;
    private final List<DatasetStats> stats;
    private final Set<Integer> stopIds;

    private DataPipeline(DataSettings settings, TemplateTokenizer tokenizer, Set<Integer> stopIds, EpochSource epochs,
            List<Example> train, List<Example> eval, List<DatasetStats> stats) {
        this.settings = settings;
        this.tokenizer = tokenizer;
        this.stopIds = stopIds;
        this.epochs = epochs;
        this.train = train;
        this.eval = eval;
        this.stats = stats;
    }

    /** {@link #load(DataSettings, TemplateTokenizer, DataLog)} reporting nothing. */
    public static DataPipeline load(DataSettings settings, TemplateTokenizer tokenizer) throws DataException {
        return load(settings, tokenizer, DataLog.SILENT);
    }

    /**
     * Reads, formats and tokenizes every dataset of {@code settings}: all into memory, or with
     * {@code streaming} only the held-out head (batches then re-read the files each epoch).
     * Broken records are skipped and counted by reason; {@code log} hears the template chosen when the job names
     * none, each dataset's counts and, as detail, the first skipped records. User errors (unknown dataset or
     * template, unreadable file, a dataset the stage cannot train on) fail with one line.
     */
    public static DataPipeline load(DataSettings settings, TemplateTokenizer tokenizer, DataLog log)
            throws DataException {
        ChatTemplate template = ChatTemplate.resolve(settings.template(), tokenizer.file(), log.info())
                .configured(settings.defaultSystem(), settings.toolFormat(), settings.enableThinking());
        if (template.efficientEos() && settings.trainOnPrompt()) {
            throw new DataException("train_on_prompt: template " + template.name() + " ends answers with one eos"
                    + " per example (efficient_eos) and does not support it, as in LLaMA-Factory");
        }
        TemplateTokenizer bound = template.bind(tokenizer);
        ExampleEncoder encoder = new ExampleEncoder(settings, template, bound);
        List<DatasetSpec> resolved = DatasetCatalog.resolve(settings.datasets(), settings.datasetDir(),
                settings.datasetsKey());
        List<DatasetSpec> specs = settings.drawsSamples() ? resolved
                : resolved.stream().map(DatasetSpec::unsampled).toList();
        List<DatasetSpec> before = settings.sampledBefore().isEmpty() ? List.of()
                : DatasetCatalog.resolve(settings.sampledBefore(), settings.datasetDir(), "dataset");
        if (settings.streaming()) {
            int head = (int) settings.valSize();
            List<Example> eval = new ArrayList<>(head);
            try (ExampleStream stream = new ExampleStream(specs, List.of(), settings.maxSamples(), encoder,
                    DataLog.SILENT, settings.seed(), true)) {
                Example example;
                while (eval.size() < head && (example = stream.next()) != null) {
                    eval.add(example);
                }
            } catch (IOException e) {
                throw new DataException("cannot close the dataset files: " + e.getMessage(), e);
            }
            StreamingEpochs epochs = new StreamingEpochs(
                    first -> new ExampleStream(specs, List.of(), settings.maxSamples(), encoder,
                            first ? log : DataLog.SILENT, settings.seed(), true),
                    settings.seed(),
                    settings.bufferSize(), head);
            return new DataPipeline(settings, bound, template.stopIds(bound), epochs, List.of(),
                    Collections.unmodifiableList(eval), List.of());
        }
        List<Example> examples = new ArrayList<>();
        List<DatasetStats> stats;
        try (ExampleStream stream = new ExampleStream(specs, before, settings.maxSamples(), encoder, log,
                settings.seed(), false)) {
            Example example;
            while ((example = stream.next()) != null) {
                examples.add(example);
            }
            stats = stream.stats();
        } catch (IOException e) {
            throw new DataException("cannot close the dataset files: " + e.getMessage(), e);
        }
        if (examples.isEmpty()) {
            throw new DataException(settings.datasetsKey() + ": no sequence left (pt blocks need more than cutoff_len"
                    + " tokens)");
        }
        int evalCount = evalCount(settings.valSize(), examples.size());
        List<Example> eval = new ArrayList<>(evalCount);
        List<Example> train = new ArrayList<>(examples.size() - evalCount);
        if (evalCount == 0) {
            train.addAll(examples);
        } else {
            int[] permutation = NumpyPermutation.of(settings.seed(), examples.size());
            for (int i = 0; i < permutation.length; i++) {
                (i < evalCount ? eval : train).add(examples.get(permutation[i]));
            }
        }
        BatchOrder order = new BatchOrder(settings.dataSeed(), settings.shuffle(), settings.groupByLength(),
                settings.batchSize());
        List<Example> trainView = Collections.unmodifiableList(train);
        return new DataPipeline(settings, bound, template.stopIds(bound), new MemoryEpochs(trainView, order), trainView,
                Collections.unmodifiableList(eval), stats);
    }

    /**
     * The held-out count, as datasets' {@code train_test_split(test_size=val_size)} takes it from LLaMA-Factory:
     * {@code ceil(val_size * n)} for a fraction, the value itself for a count; at least one example must be left
     * to train on.
     */
    private static int evalCount(double valSize, int n) throws DataException {
        if (valSize <= 1e-6) {
            return 0;
        }
        int count = valSize < 1 ? (int) Math.ceil(valSize * n) : (int) valSize;
        if (count >= n) {
            throw new DataException("val_size: " + valSize + " leaves no training example out of " + n);
        }
        return count;
    }

    /**
     * The training examples in memory, in file order, or with {@code val_size} in the split's order (batches shuffle
     * them); empty when streaming.
     */
    public List<Example> train() {
        return train;
    }

    /** The held-out examples ({@code val_size}) in the split's order, empty without a split. */
    public List<Example> eval() {
        return eval;
    }

    /** Kept/skipped record counts per dataset (empty when streaming: the counts are logged per pass). */
    public List<DatasetStats> stats() {
        return stats;
    }

    /**
     * The ids that end a generated answer in this template: the eos of {@link #tokenizer()} and the template's stop
     * words ({@code Template.get_stop_token_ids}, where LLaMA-Factory's predict also stops).
     */
    public Set<Integer> stopIds() {
        return stopIds;
    }

    /** The tokenizer as the template uses it (eos possibly replaced; pad id for padding). */
    public TemplateTokenizer tokenizer() {
        return tokenizer;
    }

    /**
     * Shuffled training micro-batches from {@code start} on, over as many epochs as asked for;
     * close it to release the files of a streamed epoch.
     */
    public BatchIterator batches(DataPosition start) throws DataException {
        return new BatchIterator(epochs, new Collator(tokenizer.padId()), settings.batchSize(), start);
    }

    /** The held-out examples in order as micro-batches, each collated when it is asked for. */
    public List<Batch> evalBatches() {
        Collator collator = new Collator(tokenizer.padId());
        int size = settings.batchSize();
        return new AbstractList<>() {
            @Override
            public Batch get(int index) {
                return collator.collate(eval.subList(index * size, Math.min((index + 1) * size, eval.size())));
            }

            @Override
            public int size() {
                return (eval.size() + size - 1) / size;
            }
        };
    }
}
