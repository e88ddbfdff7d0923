package io.qlora4j.data;

import java.util.AbstractList;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.Random;
import java.util.function.UnaryOperator;

/**
 * The data side of a training job, built from {@link DataSettings} and a tokenizer: reads the
 * datasets, formats them with the chat template, tokenizes them with -100 label masks, holds out
 * the validation split and hands out resumable micro-batches.
 */
public final class DataPipeline {

    /** Records processed together when packing, as LLaMA-Factory's {@code preprocessing_batch_size}. */
    static final int GROUP = 1000;

    private final DataSettings settings;
    private final TemplateTokenizer tokenizer;
    private final List<Example> train;
    private final List<Example> eval;
    private final List<DatasetStats> stats;

    private DataPipeline(DataSettings settings, TemplateTokenizer tokenizer, List<Example> train, List<Example> eval,
            List<DatasetStats> stats) {
        this.settings = settings;
        this.tokenizer = tokenizer;
        this.train = train;
        this.eval = eval;
        this.stats = stats;
    }

    /**
     * Reads, formats and tokenizes every dataset of {@code settings}; broken records are skipped
     * and counted, user errors (unknown dataset or template, unreadable file) fail with one line.
     */
    public static DataPipeline load(DataSettings settings, TemplateTokenizer tokenizer) throws DataException {
        ChatTemplate template = ChatTemplate.named(settings.template());
        TemplateTokenizer bound = template.bind(tokenizer);
        // LLaMA-Factory shortens cutoff_len by one when packing
        int cutoff = settings.packing() ? Math.max(settings.cutoffLen() - 1, 1) : settings.cutoffLen();
        boolean pretrain = settings.stage() == DataSettings.Stage.PT;
        SupervisedEncoder supervised = new SupervisedEncoder(template, bound, cutoff, settings.trainOnPrompt(),
                settings.maskHistory());
        PretrainEncoder plain = new PretrainEncoder(bound, template.name(), cutoff);
        List<Example> examples = new ArrayList<>();
        List<Example> group = new ArrayList<>();
        UnaryOperator<List<Example>> finishGroup = pretrain ? plain::blocks : rows -> Packer.pack(rows, cutoff);
        List<DatasetStats> stats = new ArrayList<>();
        for (DatasetSpec spec : DatasetCatalog.resolve(settings.datasets(), settings.datasetDir())) {
            stats.add(DatasetReader.read(spec, settings.maxSamples(), conversation -> {
                Example example;
                try {
                    if (pretrain) {
                        example = settings.packing() ? plain.tokens(conversation) : plain.encode(conversation);
                    } else {
                        requireSupervised(conversation);
                        example = supervised.encode(conversation);
                    }
                } catch (IllegalArgumentException e) {
                    throw new InvalidRecordException(e.getMessage());
                }
                if (!settings.packing()) {
                    examples.add(example);
                    return;
                }
                group.add(example);
                if (group.size() == GROUP) {
                    examples.addAll(finishGroup.apply(group));
                    group.clear();
                }
            }));
        }
        if (!group.isEmpty()) {
            examples.addAll(finishGroup.apply(group));
        }
        if (examples.isEmpty()) {
            throw new DataException("dataset: no training sequence left (pt blocks need more than cutoff_len tokens)");
        }
        int evalCount = evalCount(settings.valSize(), examples.size());
        List<Example> eval = new ArrayList<>(evalCount);
        List<Example> train = new ArrayList<>(examples.size() - evalCount);
        if (evalCount == 0) {
            train.addAll(examples);
        } else {
            int[] permutation = new int[examples.size()];
            for (int i = 0; i < permutation.length; i++) {
                permutation[i] = i;
            }
            BatchOrder.shuffle(permutation, new Random(settings.seed()));
            for (int i = 0; i < permutation.length; i++) {
                (i < evalCount ? eval : train).add(examples.get(permutation[i]));
            }
        }
        return new DataPipeline(settings, bound, Collections.unmodifiableList(train),
                Collections.unmodifiableList(eval), List.copyOf(stats));
    }

    /** Supervised training needs user/assistant exchanges ending with the assistant's answer. */
    private static void requireSupervised(Conversation conversation) throws InvalidRecordException {
        List<Message> messages = conversation.messages();
        if (messages.size() % 2 != 0) {
            throw new InvalidRecordException("no response (output) to train on");
        }
    }

    /** The held-out count: {@code ceil(val_size * n)} for a fraction, the value itself for a count. */
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

    /** The training examples, in file order (batches shuffle them). */
    public List<Example> train() {
        return train;
    }

    /** The held-out examples ({@code val_size}), empty without a split. */
    public List<Example> eval() {
        return eval;
    }

    /** Kept/skipped record counts per dataset. */
    public List<DatasetStats> stats() {
        return stats;
    }

    /** The tokenizer as the template uses it (eos possibly replaced; pad id for padding). */
    public TemplateTokenizer tokenizer() {
        return tokenizer;
    }

    /** Shuffled training micro-batches from {@code start} on, over as many epochs as asked for. */
    public BatchIterator batches(DataPosition start) {
        BatchOrder order = new BatchOrder(settings.seed(), true, settings.groupByLength(), settings.batchSize());
        return new BatchIterator(train, order, new Collator(tokenizer.padId()), settings.batchSize(), start);
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
