package io.qlora4j.data;

import java.util.List;

/**
 * Turns conversations into training sequences for the job's stage: supervised examples
 * ({@link SupervisedEncoder}) or plain-text documents ({@link PretrainEncoder}); with packing,
 * groups of {@code preprocessing_batch_size} records are packed together ({@link Packer}, or pt blocks), as
 * LLaMA-Factory processes that many records at a time ({@link PackingGroups}).
 */
final class ExampleEncoder {

    private final boolean pretrain;
    private final int group;
    private final int shards;
    private final boolean packing;
    private final int cutoff;
    private final SupervisedEncoder supervised;
    private final PretrainEncoder plain;

    ExampleEncoder(DataSettings settings, ChatTemplate template, TemplateTokenizer boundTokenizer) {
        this.pretrain = settings.stage() == DataSettings.Stage.PT;
        this.packing = settings.packing();
        this.group = settings.preprocessingBatchSize();
        this.shards = settings.preprocessingNumWorkers();
        this.cutoff = settings.cutoffLen();
        this.supervised = new SupervisedEncoder(template, boundTokenizer, cutoff, settings.trainOnPrompt(),
                settings.maskHistory(), settings.maskHistory() && !settings.preserveThinking());
        this.plain = new PretrainEncoder(boundTokenizer, template, cutoff);
    }

    /** Records packed together ({@code preprocessing_batch_size}). */
    int group() {
        return group;
    }

    /** The contiguous shards the records are grouped within ({@code preprocessing_num_workers}; 1 for none). */
    int shards() {
        return shards;
    }

    /** Whether examples are collected in groups and packed. */
    boolean packing() {
        return packing;
    }

    /** One conversation's example (before packing); refuses what the stage cannot use. */
    Example encode(Conversation conversation) throws InvalidRecordException {
        try {
            if (pretrain) {
                return packing ? plain.tokens(conversation) : plain.encode(conversation);
            }
            if (conversation.messages().size() % 2 != 0) {
                throw new InvalidRecordException("no response (output) to train on");
            }
            return supervised.encode(conversation);
        } catch (IllegalArgumentException e) {
            throw new InvalidRecordException(e.getMessage());
        }
    }

    /** The packed rows of one group of encoded examples. */
    List<Example> pack(List<Example> group) {
        return pretrain ? plain.blocks(group) : Packer.pack(group, cutoff);
    }
}
