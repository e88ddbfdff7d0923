package io.qlora4j.data;

import static io.qlora4j.data.SupervisedEncoderTest.concat;
import static io.qlora4j.data.TinyTokenizer.ids;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

class PackingTest extends TokenizerTestBase {

    static final int IGN = -100;

    /**
     * No bos although tokenizer_config.json says {@code add_bos_token: true}: LLaMA-Factory's pretraining processor
     * on transformers 5.12.1 gives Mistral-7B-v0.1's, Gemma 2's and Mistral Nemo's tokenizers (all with
     * {@code add_bos_token: true}) "Hello world, this is a document." as ids without bos, with and without packing.
     */
    @Test
    void pretrainDocumentsEndWithEosHaveNoBosAndMaskPadEqualTokens() throws Exception {
        Files.writeString(dir.resolve("t.jsonl"), "{\"text\": \"hi there\"}\n{\"text\": \"bye\"}\n");
        DataPipeline pipeline = load(settings("t.jsonl").optStage(DataSettings.Stage.PT)
                .optPacking(false).optCutoffLen(3));
        // hi there </s> cut to 3; pad = eos, so eos labels are -100 (DataCollatorForLanguageModeling)
        assertArrayEquals(ids("hi", "there", "</s>"), pipeline.train().get(0).inputIds());
        assertArrayEquals(ids("bye", "</s>"), pipeline.train().get(1).inputIds());
        assertArrayEquals(new int[] {ids("bye")[0], IGN}, pipeline.train().get(1).labels());
    }

    @Test
    void pretrainPackingCutsTheJoinedDocumentsIntoFullBlocks() throws Exception {
        Files.writeString(dir.resolve("t.jsonl"),
                "{\"text\": \"one two\"}\n{\"text\": \"three four five\"}\n{\"text\": \"six\"}\n");
        // packing set explicitly: block = cutoff_len - 1 = 3 of: one two </s> three four five </s> six </s>
        DataPipeline pipeline = load(settings("t.jsonl").optStage(DataSettings.Stage.PT).optPacking(true)
                .optCutoffLen(4));
        assertEquals(3, pipeline.train().size());
        assertArrayEquals(ids("one", "two", "</s>"), pipeline.train().get(0).inputIds());
        assertArrayEquals(ids("three", "four", "five"), pipeline.train().get(1).inputIds());
        assertArrayEquals(ids("</s>", "six", "</s>"), pipeline.train().get(2).inputIds());
        assertArrayEquals(new int[] {IGN, ids("six")[0], IGN}, pipeline.train().get(2).labels());
        // packing left to the pt default: LLaMA-Factory's DataArguments took nothing off, blocks of cutoff_len = 4
        DataPipeline byDefault = load(settings("t.jsonl").optStage(DataSettings.Stage.PT).optCutoffLen(4));
        assertEquals(2, byDefault.train().size());
        assertArrayEquals(ids("one", "two", "</s>", "three"), byDefault.train().get(0).inputIds());
        assertArrayEquals(ids("four", "five", "</s>", "six"), byDefault.train().get(1).inputIds());
        // with a pad of its own, eos is a label
        TinyTokenizer.write(dir.resolve("plain"), Map.of("eos_token", "</s>", "pad_token", "<pad>"));
        try (TemplateTokenizer padded = TemplateTokenizer.open(dir.resolve("plain"))) {
            DataPipeline raw = DataPipeline.load(DataSettings.builder().setDatasets(List.of("t.jsonl"))
                    .optDatasetDir(dir).optStage(DataSettings.Stage.PT).optPacking(true).optCutoffLen(4).build(),
                    padded);
            assertArrayEquals(ids("</s>", "six", "</s>"), raw.train().get(2).inputIds());
            assertArrayEquals(ids("</s>", "six", "</s>"), raw.train().get(2).labels());
        }
    }

    /**
     * LLaMA-Factory maps the records with {@code num_proc = preprocessing_num_workers}: datasets cuts them into that
     * many contiguous shards (sizes differing by at most one, the longer first) and packs each apart, so pt blocks
     * never join two shards' text and each shard drops its own remainder. A streamed dataset is mapped whole.
     */
    @Test
    void pretrainBlocksAreCutWithinEachWorkersShard() throws Exception {
        Files.writeString(dir.resolve("t.jsonl"), "{\"text\": \"one two\"}\n{\"text\": \"three four five\"}\n"
                + "{\"text\": \"six\"}\n{\"text\": \"seven eight\"}\n");
        // one two </s> three | four five </s> six | </s> seven eight </s>: blocks of 4
        DataPipeline one = load(settings("t.jsonl").optStage(DataSettings.Stage.PT).optCutoffLen(4));
        assertEquals(List.of(List.of("one", "two", "</s>", "three"), List.of("four", "five", "</s>", "six"),
                List.of("</s>", "seven", "eight", "</s>")), rows(one));
        // two shards, records 0-1 and 2-3: "one two </s> three four five </s>" gives one block and drops three
        // tokens, "six </s> seven eight </s>" one block and drops one
        DataPipeline two = load(settings("t.jsonl").optStage(DataSettings.Stage.PT).optCutoffLen(4)
                .optPreprocessingNumWorkers(2));
        assertEquals(List.of(List.of("one", "two", "</s>", "three"), List.of("six", "</s>", "seven", "eight")),
                rows(two));
        // three shards of 2, 1 and 1 records: the last two are shorter than a block and give none
        DataPipeline three = load(settings("t.jsonl").optStage(DataSettings.Stage.PT).optCutoffLen(4)
                .optPreprocessingNumWorkers(3));
        assertEquals(List.of(List.of("one", "two", "</s>", "three")), rows(three));
        // more workers than records: one record a shard, as datasets lowers num_proc to the record count
        assertEquals(rows(load(settings("t.jsonl").optStage(DataSettings.Stage.PT).optCutoffLen(4)
                .optPreprocessingNumWorkers(4))), rows(load(settings("t.jsonl").optStage(DataSettings.Stage.PT)
                .optCutoffLen(4).optPreprocessingNumWorkers(16))));
        assertEquals(1, settings("t.jsonl").optPreprocessingNumWorkers(2).optStreaming(true).build()
                .preprocessingNumWorkers());
    }

    @Test
    void groupsFollowDatasetsContiguousShards() {
        // 10 records in 3 shards: 0-3, 4-6, 7-9 (datasets' shard: div 3, mod 1); groups of 2 from each shard's start
        PackingGroups groups = new PackingGroups(2, 3, 10);
        List<Long> ends = new java.util.ArrayList<>();
        for (long row = 0; row < 10; row++) {
            if (groups.endsGroup(row)) {
                ends.add(row);
            }
        }
        assertEquals(List.of(1L, 3L, 5L, 6L, 8L, 9L), ends);
        assertEquals(List.of(true, false, true), List.of(new PackingGroups(1000, 1, 0).endsGroup(999),
                new PackingGroups(1000, 1, 0).endsGroup(1000), new PackingGroups(1000, 16, 300).endsGroup(18)));
    }

    private static List<List<String>> rows(DataPipeline pipeline) {
        return pipeline.train().stream().map(e -> TinyTokenizer.pieces(e.inputIds())).toList();
    }

    @Test
    void supervisedPackingFillsRowsGreedilyAndKeepsExamplesApart() throws Exception {
        Files.writeString(dir.resolve("s.jsonl"), """
                {"instruction": "hi", "output": "ok"}
                {"instruction": "hi there", "output": "ok"}
                {"instruction": "how are you", "output": "ok"}
                {"instruction": "hi", "output": "fine thanks"}
                """);
        // lengths a=10, b=11, c=12, d=11; capacity 24 - 1 = 23: rows [c, d] and [b, a]
        DataPipeline pipeline = load(settings("s.jsonl").optPacking(true).optCutoffLen(24)
                .optBatchSize(2));
        int[] ok = ids("ok", "</s>", "\n");
        int[] a = concat(ids("Human", ":", "hi", "</s>", "\n", "Assistant", ":"), ok);
        int[] b = concat(ids("Human", ":", "hi", "there", "</s>", "\n", "Assistant", ":"), ok);
        int[] c = concat(ids("Human", ":", "how", "are", "you", "</s>", "\n", "Assistant", ":"), ok);
        int[] d = concat(ids("Human", ":", "hi", "</s>", "\n", "Assistant", ":"), ids("fine", "thanks", "</s>", "\n"));
        assertEquals(2, pipeline.train().size());
        assertArrayEquals(concat(c, d), pipeline.train().get(0).inputIds());
        assertArrayEquals(new int[] {12, 11}, pipeline.train().get(0).segmentLengths());
        assertArrayEquals(concat(b, a), pipeline.train().get(1).inputIds());
        assertArrayEquals(new int[] {11, 10}, pipeline.train().get(1).segmentLengths());

        Batch batch = pipeline.batches(DataPosition.START).next();
        // every token's segment is that of the example it came from: attention never crosses examples
        for (int r = 0; r < 2; r++) {
            long firstToken3 = batch.inputIds()[r * batch.columns() + 3];
            Example row = firstToken3 == ids("are")[0] ? pipeline.train().get(0) : pipeline.train().get(1);
            int at = 0;
            for (int s = 0; s < row.segmentLengths().length; s++) {
                for (int p = 0; p < row.segmentLengths()[s]; p++, at++) {
                    assertEquals(row.inputIds()[at], batch.inputIds()[r * batch.columns() + at]);
                    assertEquals(s + 1, batch.attentionMask()[r * batch.columns() + at]);
                    assertEquals(p, batch.positionIds()[r * batch.columns() + at]);
                }
            }
        }
    }
}
