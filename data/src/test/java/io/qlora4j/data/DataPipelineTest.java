package io.qlora4j.data;

import static io.qlora4j.data.SupervisedEncoderTest.concat;
import static io.qlora4j.data.SupervisedEncoderTest.ignored;
import static io.qlora4j.data.TinyTokenizer.ids;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;

class DataPipelineTest extends TokenizerTestBase {

    @Test
    void alpacaJsonArrayJoinsInstructionAndInputAndReadsSystemAndHistory() throws Exception {
        Files.writeString(dir.resolve("a.json"), """
                [
                  {"instruction": "hi", "input": "there", "output": "fine", "system": "be nice",
                   "history": [["one", "two"]]},
                  {"instruction": "how are you", "input": "", "output": "ok"}
                ]
                """);
        DataPipeline pipeline = load(settings(dir.resolve("a.json").toString()));
        assertEquals(2, pipeline.train().size());
        Example first = pipeline.train().get(0);
        int[] p1 = ids("System", ":", "be", "nice", "</s>", "\n", "Human", ":", "one", "</s>", "\n", "Assistant", ":");
        int[] r1 = ids("two", "</s>", "\n");
        int[] p2 = ids("Human", ":", "hi", "\n", "there", "</s>", "\n", "Assistant", ":");
        int[] r2 = ids("fine", "</s>", "\n");
        assertArrayEquals(concat(p1, r1, p2, r2), first.inputIds());
        assertArrayEquals(concat(ignored(p1.length), r1, ignored(p2.length), r2), first.labels());
        assertArrayEquals(ids("Human", ":", "how", "are", "you", "</s>", "\n", "Assistant", ":", "ok", "</s>", "\n"),
                pipeline.train().get(1).inputIds());
    }

    @Test
    void brokenJsonlRecordsAreSkippedAndCounted() throws Exception {
        Files.writeString(dir.resolve("b.jsonl"), """
                {"instruction": "hi", "output": "fine"}
                {"instruction": "hi", "output":
                {"instruction": "hi"}

                {"instruction": "bye", "output": "ok"}
                [1, 2]
                """);
        DataPipeline pipeline = load(settings("b.jsonl"));
        assertEquals(2, pipeline.train().size());
        assertEquals(List.of(new DatasetStats("b.jsonl", 2, 3, Map.of("invalid JSON", 1L,
                "no response (output) to train on", 1L, "not a JSON object", 1L))), pipeline.stats());
        assertEquals("b.jsonl: 2 records kept, 3 skipped (1 invalid JSON, 1 no response (output) to train on,"
                + " 1 not a JSON object)", pipeline.stats().get(0).summary());
    }

    /** A dataset_info.json that is not an object of entries is refused naming it, not read as one without entries. */
    @Test
    void aDatasetInfoThatIsNoObjectIsNamed() throws Exception {
        Files.writeString(dir.resolve("qa.jsonl"), "{\"instruction\": \"hi\", \"output\": \"fine\"}\n");
        Files.writeString(dir.resolve("dataset_info.json"), "[{\"qa\": {\"file_name\": \"qa.jsonl\"}}]");
        DataException e = assertThrows(DataException.class, () -> load(settings("qa")));
        assertEquals(dir.resolve("dataset_info.json") + ": expected a JSON object of dataset entries, not a list",
                e.getMessage());
        Files.writeString(dir.resolve("dataset_info.json"), "7");
        e = assertThrows(DataException.class, () -> load(settings("qa")));
        assertEquals(dir.resolve("dataset_info.json") + ": expected a JSON object of dataset entries, not the number 7",
                e.getMessage());
        Files.writeString(dir.resolve("dataset_info.json"), "");
        e = assertThrows(DataException.class, () -> load(settings("qa")));
        assertEquals(dir.resolve("dataset_info.json") + ": expected a JSON object of dataset entries, not an empty"
                + " file", e.getMessage());
    }

    /**
     * An empty file, or one whose every record is broken, is refused saying so: it has no fields, so a message that
     * its columns name a field no record has would send the user to a mapping that is right.
     */
    @Test
    void anEmptyOrWhollyBrokenFileIsNotBlamedOnItsColumns() throws Exception {
        Files.writeString(dir.resolve("dataset_info.json"), """
                {"empty": {"file_name": "e.jsonl", "columns": {"prompt": "instruction", "response": "output"}},
                 "ragged": {"file_name": "r.csv", "columns": {"prompt": "instruction", "response": "output"}}}
                """);
        Files.writeString(dir.resolve("e.jsonl"), "");
        DataException empty = assertThrows(DataException.class, () -> load(settings("empty")));
        assertEquals("dataset empty: no record in " + dir.resolve("e.jsonl"), empty.getMessage());
        Files.writeString(dir.resolve("r.csv"), "instruction,input,output\nhi,fine\n\"bye,,ok\n");
        DataException ragged = assertThrows(DataException.class, () -> load(settings("ragged")));
        assertEquals("dataset ragged: no usable record (2 skipped: 2 wrong number of CSV fields; --debug shows the"
                + " first 5 with file and line)", ragged.getMessage());
    }

    @Test
    void datasetInfoEntryMapsColumns() throws Exception {
        Files.writeString(dir.resolve("dataset_info.json"), """
                {"qa": {"file_name": "qa.jsonl", "columns": {"prompt": "question", "response": "answer"}},
                 "other": {"file_name": "missing.json"}}
                """);
        Files.writeString(dir.resolve("qa.jsonl"), "{\"question\": \"hi\", \"answer\": \"fine\"}\n");
        DataPipeline pipeline = load(settings("qa"));
        assertArrayEquals(ids("Human", ":", "hi", "</s>", "\n", "Assistant", ":", "fine", "</s>", "\n"),
                pipeline.train().get(0).inputIds());
        DataException unknown = assertThrows(DataException.class, () -> load(settings("qb")));
        assertTrue(unknown.getMessage().contains("'qb'") && unknown.getMessage().contains("qa, other"),
                unknown.getMessage());
        // a dataset_dir that is no folder, or LLaMA-Factory's Hub form, is named as such
        DataException missing = assertThrows(DataException.class,
                () -> DataPipeline.load(settings("qa").optDatasetDir(dir.resolve("nowhere")).build(), tokenizer));
        assertEquals("dataset: unknown dataset 'qa' (dataset_dir " + dir.resolve("nowhere") + " is no folder, and no"
                + " such file)", missing.getMessage());
        DataException remote = assertThrows(DataException.class,
                () -> DataPipeline.load(settings("qa").optDatasetDir(Path.of("REMOTE:llamafactory/demo_data")).build(),
                        tokenizer));
        assertEquals("dataset_dir: REMOTE:llamafactory/demo_data: only local datasets are supported; download the"
                + " folder and give its path", remote.getMessage());
    }

    /**
     * LLaMA-Factory's {@code DatasetAttr.join} sets every column from an entry's {@code columns} object and every tag
     * from its {@code tags} object, unnamed ones to None: prompt and response alone read no {@code input}, tags without
     * {@code system_tag} make a leading system message an out-of-order turn, and sharegpt without a message list or
     * role field cannot be read at all (LLaMA-Factory stops with a KeyError).
     */
    @Test
    void anEntrysColumnsAndTagsReplaceEveryDefault() throws Exception {
        Files.writeString(dir.resolve("dataset_info.json"), """
                {"qa": {"file_name": "qa.jsonl", "columns": {"prompt": "instruction", "response": "output"}},
                 "chat": {"file_name": "chat.jsonl", "formatting": "sharegpt", "columns": {"messages": "messages"},
                   "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                            "assistant_tag": "assistant"}},
                 "no_list": {"file_name": "chat.jsonl", "formatting": "sharegpt", "columns": {"system": "sys"}},
                 "no_role": {"file_name": "chat.jsonl", "formatting": "sharegpt", "columns": {"messages": "messages"},
                   "tags": {"content_tag": "content"}},
                 "misplaced": {"file_name": "qa.jsonl", "columns": {"role_tag": "role"}},
                 "typo": {"file_name": "qa.jsonl", "columns": {"prompt": "instrution", "response": "output"}}}
                """);
        Files.writeString(dir.resolve("qa.jsonl"), "{\"instruction\": \"hi\", \"input\": \"there\", \"output\": \"fine\"}\n");
        DataPipeline qa = load(settings("qa"));
        assertArrayEquals(ids("Human", ":", "hi", "</s>", "\n", "Assistant", ":", "fine", "</s>", "\n"),
                qa.train().get(0).inputIds());

        Files.writeString(dir.resolve("chat.jsonl"), """
                {"messages": [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "fine"}]}
                {"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"},
                  {"role": "assistant", "content": "ok"}]}
                """.replace("\n  ", " "));
        DataPipeline chat = load(settings("chat"));
        assertEquals(1, chat.train().size());
        assertEquals(1, chat.stats().get(0).skipped(), chat.stats().get(0).summary());

        // the whole file shows whether a field is in no record; records max_samples leaves out count
        Files.writeString(dir.resolve("sys.jsonl"), "{\"instruction\": \"hi\", \"output\": \"fine\"}\n"
                + "{\"instruction\": \"hi\", \"output\": \"ok\"}\n{\"instruction\": \"hi\", \"output\": \"ok\","
                + " \"sys\": \"be nice\"}\n");
        Files.writeString(dir.resolve("dataset_info.json"), Files.readString(dir.resolve("dataset_info.json"))
                .replaceFirst("\\{", "{\"sys\": {\"file_name\": \"sys.jsonl\", \"columns\": {\"prompt\": \"instruction\","
                        + " \"response\": \"output\", \"system\": \"sys\"}},"));
        assertEquals(2, load(settings("sys").optMaxSamples(2)).train().size());
        assertEquals(3, load(settings("sys")).train().size());
        for (String[] refused : new String[][] {{"no_list", "'messages'"}, {"no_role", "'role_tag'"},
                {"misplaced", "belongs in 'tags'"},
                {"typo", "dataset typo: its columns name instrution, a field no record has"}}) {
            DataException e = assertThrows(DataException.class, () -> load(settings(refused[0])));
            assertTrue(e.getMessage().contains(refused[1]), e.getMessage());
        }
    }

    /** A dataset_info.json entry's own keys are checked: misspelled, mistyped or remote ones stop the job naming them. */
    @Test
    void anEntrysKeysAreCheckedByNameAndType() throws Exception {
        Files.writeString(dir.resolve("qa.jsonl"), "{\"instruction\": \"hi\", \"output\": \"fine\"}\n");
        Files.writeString(dir.resolve("dataset_info.json"), """
                {"typo": {"file_name": "qa.jsonl", "formating": "sharegpt"},
                 "hub": {"file_name": "qa.jsonl", "hf_hub_url": "llamafactory/alpaca_en"},
                 "number": {"file_name": 5},
                 "ranked": {"file_name": "qa.jsonl", "ranking": "yes"},
                 "old": {"file_name": "qa.jsonl", "file_sha1": "0123"}}
                """);
        for (String[] refused : new String[][] {{"typo", "typo: unknown key 'formating'; known: file_name, formatting"},
                {"hub", "hub: 'hf_hub_url': only local datasets are supported"},
                {"number", "number: 'file_name' must be a string, not 5"},
                {"ranked", "ranked: 'ranking' must be true or false, not \"yes\""}}) {
            DataException e = assertThrows(DataException.class, () -> load(settings(refused[0])));
            assertTrue(e.getMessage().contains(refused[1]), e.getMessage());
        }
        assertEquals(1, load(settings("old")).train().size());
    }

    /**
     * The split is datasets' {@code train_test_split(test_size, seed)}: with
     * {@code p = np.random.default_rng(seed).permutation(n)} (numpy 2.4.6 printed {@code [3 0 7 2 4 6 1 5 8]} for
     * seed 42, n 9 and {@code [0 5 6 2 4 1 3]} for seed 7, n 7), test is {@code p[:n_test]} and train
     * {@code p[n_test:]}, {@code n_test = ceil(val_size * n)} for a fraction.
     */
    @Test
    void valSizeHoldsOutTheRecordsTrainTestSplitPicks() throws Exception {
        StringBuilder lines = new StringBuilder();
        String[] words = {"one", "two", "three", "four", "five", "six", "seven", "eight", "hi", "bye"};
        for (String word : words) {
            lines.append("{\"instruction\": \"").append(word).append("\", \"output\": \"ok\"}\n");
        }
        Files.writeString(dir.resolve("v.jsonl"), lines);
        DataPipeline pipeline = load(settings("v.jsonl").optValSize(0.15).optMaxSamples(9).optBatchSize(2));
        // max_samples keeps the first 9 records; ceil(0.15 * 9) = 2 held out; seed 42 by default
        assertEquals(List.of("four", "one"), instructions(pipeline.eval()));
        assertEquals(List.of("eight", "three", "five", "seven", "two", "six", "hi"), instructions(pipeline.train()));
        assertEquals(1, pipeline.evalBatches().size());
        assertEquals(2, pipeline.evalBatches().get(0).rows());

        // a count; the broken record is dropped before the split, so 7 examples are split, not 8
        Files.writeString(dir.resolve("c.jsonl"), """
                {"instruction": "one", "output": "ok"}
                {"instruction": "two", "output": "ok"}
                {"instruction": "bye"}
                {"instruction": "three", "output": "ok"}
                {"instruction": "four", "output": "ok"}
                {"instruction": "five", "output": "ok"}
                {"instruction": "six", "output": "ok"}
                {"instruction": "seven", "output": "ok"}
                """);
        DataPipeline counted = load(settings("c.jsonl").optValSize(3).optSeed(7));
        assertEquals(List.of("one", "six", "seven"), instructions(counted.eval()));
        assertEquals(List.of("three", "five", "two", "four"), instructions(counted.train()));
    }

    @Test
    void valSizeRefusesWhatTrainTestSplitRefuses() throws Exception {
        Files.writeString(dir.resolve("v.jsonl"), "{\"instruction\": \"hi\", \"output\": \"ok\"}\n".repeat(3));
        assertEquals("val_size: 1 is neither a fraction below 1 nor a count above 1 (LLaMA-Factory hands"
                + " train_test_split test_size=1.0, which it refuses)",
                assertThrows(DataException.class, () -> load(settings("v.jsonl").optValSize(1))).getMessage());
        assertEquals("val_size: 3.0 leaves no training example out of 3",
                assertThrows(DataException.class, () -> load(settings("v.jsonl").optValSize(3))).getMessage());
        assertEquals("seed: -1 must not be negative with val_size (the split is numpy.random.default_rng(seed)'s,"
                + " which refuses it)",
                assertThrows(DataException.class, () -> load(settings("v.jsonl").optValSize(2).optSeed(-1)))
                        .getMessage());
    }

    /** The instruction word of each example (the default template puts it third). */
    private static List<String> instructions(List<Example> examples) {
        return examples.stream().map(e -> TinyTokenizer.pieces(new int[] {e.inputIds()[2]}).get(0)).toList();
    }

    @Test
    void directOpenAiFileIsReadAsMessages() throws Exception {
        Files.writeString(dir.resolve("chat.jsonl"), """
                {"messages": [{"role": "system", "content": "be nice"}, {"role": "user", "content": "hi"}, \
                {"role": "assistant", "content": "fine"}]}
                {"messages": [{"role": "user", "content": "hi"}]}
                """);
        DataPipeline pipeline = load(settings("chat.jsonl"));
        assertEquals(List.of(new DatasetStats("chat.jsonl", 1, 1, Map.of("conversation does not end with an assistant turn",
                1L))), pipeline.stats());
        assertArrayEquals(ids("System", ":", "be", "nice", "</s>", "\n", "Human", ":", "hi", "</s>", "\n",
                "Assistant", ":", "fine", "</s>", "\n"), pipeline.train().get(0).inputIds());
    }

    @Test
    void numSamplesDrawsAPermutationThenRepeats() throws Exception {
        String[] words = {"one", "two", "three", "four", "five"};
        StringBuilder lines = new StringBuilder();
        for (String word : words) {
            lines.append("{\"instruction\": \"").append(word).append("\", \"output\": \"ok\"}\n");
        }
        Files.writeString(dir.resolve("n.jsonl"), lines);
        Files.writeString(dir.resolve("dataset_info.json"), """
                {"three": {"file_name": "n.jsonl", "num_samples": 3}, "seven": {"file_name": "n.jsonl", "num_samples": 7},
                 "test": {"file_name": "n.jsonl", "split": "test"}}
                """);
        // numpy 2.4.6: np.random.seed(42); np.random.permutation(5)[:k], then np.random.choice(5, k - 5) for k > 5
        for (int count : new int[] {3, 7}) {
            List<Integer> expected = count == 3 ? List.of(1, 4, 2) : List.of(1, 4, 2, 0, 3, 4, 4);
            DataPipeline pipeline = load(settings(count == 3 ? "three" : "seven"));
            assertEquals(count, pipeline.train().size());
            for (int i = 0; i < count; i++) {
                assertEquals(ids(words[expected.get(i)])[0], pipeline.train().get(i).inputIds()[2]);
            }
        }
        // two sampled datasets of one job: the second continues numpy's global stream after the first's draw
        // (np.random.seed(42); permutation(5)[:3]; then permutation(5), choice(5, 2))
        List<Integer> both = List.of(1, 4, 2, 3, 1, 2, 0, 4, 2, 2);
        DataPipeline pipeline = load(settings("three", "seven"));
        assertEquals(both.size(), pipeline.train().size());
        for (int i = 0; i < both.size(); i++) {
            assertEquals(ids(words[both.get(i)])[0], pipeline.train().get(i).inputIds()[2], "example " + i);
        }
        // an eval_dataset after the training ones: its draw follows theirs in the same stream
        DataPipeline after = load(settings("seven").optSampledBefore(List.of("three")));
        for (int i = 0; i < 7; i++) {
            assertEquals(ids(words[both.get(3 + i)])[0], after.train().get(i).inputIds()[2], "example " + i);
        }
        // packed over two shards the stream counts the records first, opening the datasets once more: the same draws
        DataPipeline packed = load(settings("three", "seven").optPacking(true).optPreprocessingNumWorkers(2));
        int[] counts = new int[words.length];
        for (Example row : packed.train()) {
            for (int id : row.inputIds()) {
                for (int w = 0; w < words.length; w++) {
                    counts[w] += id == ids(words[w])[0] ? 1 : 0;
                }
            }
        }
        assertArrayEquals(new int[] {1, 2, 4, 1, 2}, counts, "each word's draws in the two samples");
        DataException split = assertThrows(DataException.class, () -> load(settings("test")));
        assertTrue(split.getMessage().endsWith("test: split 'test': a local file has only the split 'train'"),
                split.getMessage());
    }
}
