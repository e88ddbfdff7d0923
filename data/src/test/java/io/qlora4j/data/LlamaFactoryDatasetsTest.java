package io.qlora4j.data;

import static io.qlora4j.data.TinyTokenizer.ids;
import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import org.junit.jupiter.api.Test;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;

/**
 * LLaMA-Factory's {@code data/} folder as a user brings it: a dataset_info.json with entries shaped like its
 * demo datasets (written here, records abridged from the demos), each kind either loaded as LLaMA-Factory loads
 * it or refused in one line naming the column and the stage it needs.
 */
class LlamaFactoryDatasetsTest extends TokenizerTestBase {

    private static final String INFO = """
            {
              "identity": {"file_name": "identity.json"},
              "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
              "alpaca_zh_demo": {"file_name": "alpaca_zh_demo.json"},
              "glaive_toolcall_en_demo": {"file_name": "glaive_toolcall_en_demo.json", "formatting": "sharegpt",
                "columns": {"messages": "conversations", "tools": "tools"}},
              "mllm_demo": {"file_name": "mllm_demo.json", "formatting": "sharegpt",
                "columns": {"messages": "messages", "images": "images"},
                "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}},
              "mllm_audio_demo": {"file_name": "mllm_demo.json", "formatting": "sharegpt",
                "columns": {"messages": "messages", "audios": "audios"},
                "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}},
              "mllm_video_demo": {"file_name": "mllm_demo.json", "formatting": "sharegpt",
                "columns": {"messages": "messages", "videos": "videos"},
                "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}},
              "dpo_en_demo": {"file_name": "dpo_en_demo.json", "ranking": true, "formatting": "sharegpt",
                "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}},
              "pairs_without_ranking": {"file_name": "dpo_en_demo.json", "formatting": "sharegpt",
                "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}},
              "kto_en_demo": {"file_name": "kto_en_demo.json", "formatting": "sharegpt",
                "columns": {"messages": "messages", "kto_tag": "label"},
                "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}},
              "wiki_demo": {"file_name": "wiki_demo.txt", "columns": {"prompt": "text"}},
              "wiki_without_columns": {"file_name": "wiki_demo.txt"},
              "c4_demo": {"file_name": "c4_demo.jsonl", "columns": {"prompt": "text"}}
            }
            """;

    private void writeDemoFolder() throws Exception {
        Files.writeString(dir.resolve("dataset_info.json"), INFO);
        Files.writeString(dir.resolve("identity.json"), """
                [{"instruction": "hi", "input": "", "output": "Hello! I am {{name}}, an AI assistant."},
                 {"instruction": "Who are you?", "input": "", "output": "I am {{name}}."}]
                """);
        Files.writeString(dir.resolve("alpaca_en_demo.json"), """
                [{"instruction": "Describe a task.", "input": "", "output": "A task is work."},
                 {"instruction": "Translate", "input": "bonjour", "output": "hello"},
                 {"instruction": "Count", "input": "", "output": "one two three"}]
                """);
        Files.writeString(dir.resolve("alpaca_zh_demo.json"), """
                [{"instruction": "识别并解释", "input": "", "output": "细胞理论是生物科学的一个理论。"}]
                """);
        Files.writeString(dir.resolve("glaive_toolcall_en_demo.json"), """
                [{"conversations": [
                   {"from": "human", "value": "I have chicken."},
                   {"from": "function_call", "value": "{\\"name\\": \\"search_recipes\\", \\"arguments\\": {\\"ingredients\\": [\\"chicken\\"]}}"},
                   {"from": "observation", "value": "{\\"recipes\\": []}"},
                   {"from": "gpt", "value": "No recipe found."}],
                  "tools": "[{\\"name\\": \\"search_recipes\\", \\"description\\": \\"Search\\", \\"parameters\\": {\\"type\\": \\"object\\", \\"properties\\": {\\"ingredients\\": {\\"type\\": \\"array\\", \\"items\\": {\\"type\\": \\"string\\"}}}, \\"required\\": [\\"ingredients\\"]}}]"}]
                """);
        Files.writeString(dir.resolve("mllm_demo.json"), """
                [{"messages": [{"content": "<image>Who are they?", "role": "user"},
                               {"content": "They're Kane and Gretzka.", "role": "assistant"}],
                  "images": ["mllm_demo_data/1.jpg"]}]
                """);
        Files.writeString(dir.resolve("dpo_en_demo.json"), """
                [{"conversations": [{"from": "human", "value": "Hi!"}],
                  "chosen": {"from": "gpt", "value": "Hello."}, "rejected": {"from": "gpt", "value": "Go away."}}]
                """);
        Files.writeString(dir.resolve("kto_en_demo.json"), """
                [{"messages": [{"content": "Summary?", "role": "user"}, {"content": "Ooh ooh ah ah!", "role": "assistant"}],
                  "label": false}]
                """);
        Files.writeString(dir.resolve("wiki_demo.txt"), "hi there\n\nbye\r\nok");
        Files.writeString(dir.resolve("c4_demo.jsonl"), "{\"text\": \"one two\"}\n{\"text\": \"three\"}\n");
    }

    private String refusal(String dataset) {
        return assertThrows(DataException.class, () -> load(settings(dataset))).getMessage();
    }

    @Test
    void demoDatasetsOfTheSupervisedKindsLoadWithEveryRecordKept() throws Exception {
        writeDemoFolder();
        DataPipeline pipeline = load(settings("identity,alpaca_en_demo,alpaca_zh_demo,glaive_toolcall_en_demo"));
        assertEquals(List.of("identity: 2 records kept, 0 skipped", "alpaca_en_demo: 3 records kept, 0 skipped",
                "alpaca_zh_demo: 1 records kept, 0 skipped", "glaive_toolcall_en_demo: 1 records kept, 0 skipped"),
                pipeline.stats().stream().map(DatasetStats::summary).toList());
    }

    @Test
    void multimodalDatasetsAreRefusedNamingTheColumn() throws Exception {
        writeDemoFolder();
        Path info = dir.resolve("dataset_info.json");
        for (String kind : List.of("images", "audios", "videos")) {
            String name = kind.equals("images") ? "mllm_demo" : kind.equals("audios") ? "mllm_audio_demo" : "mllm_video_demo";
            assertEquals(info + ": " + name + ": column '" + kind + "' (" + kind + "): multimodal training (" + kind
                    + ") is not implemented; qlora4j trains text-only models with stage sft or pt", refusal(name));
        }
    }

    @Test
    void preferenceAndKtoDatasetsAreRefusedNamingTheStageTheyAreFor() throws Exception {
        writeDemoFolder();
        Path info = dir.resolve("dataset_info.json");
        assertEquals(info + ": dpo_en_demo: ranking: true marks preference pairs are data for stage rm or dpo, which"
                + " are not implemented; qlora4j trains stage sft and pt", refusal("dpo_en_demo"));
        assertEquals(info + ": pairs_without_ranking: column 'chosen' (chosen): preference pairs are data for stage rm"
                + " or dpo, which are not implemented; qlora4j trains stage sft and pt", refusal("pairs_without_ranking"));
        assertEquals(info + ": kto_en_demo: column 'label' (kto_tag): KTO feedback labels are data for stage kto, which"
                + " is not implemented; qlora4j trains stage sft and pt", refusal("kto_en_demo"));
        // the same records named as a file directly: the columns give them away
        assertEquals(dir.resolve("mllm_demo.json") + ": column 'images': multimodal training (images) is not"
                + " implemented; qlora4j trains text-only models with stage sft or pt", refusal("mllm_demo.json"));
        assertTrue(refusal("dpo_en_demo.json").contains("column 'chosen': preference pairs are data for stage rm or dpo"));
    }

    @Test
    void plainTextFileIsOneDocumentALineForPretraining() throws Exception {
        writeDemoFolder();
        DataPipeline wiki = load(settings("wiki_demo").optStage(DataSettings.Stage.PT).optPacking(false));
        // every line, the empty one included, becomes text + eos (as Hugging Face's text loader and
        // LLaMA-Factory's pretraining processor make it); \r\n ends a line too
        List<int[]> ids = new ArrayList<>();
        wiki.train().forEach(e -> ids.add(e.inputIds()));
        assertEquals(4, ids.size());
        assertArrayEquals(ids("hi", "there", "</s>"), ids.get(0));
        assertArrayEquals(ids("</s>"), ids.get(1));
        assertArrayEquals(ids("bye", "</s>"), ids.get(2));
        assertArrayEquals(ids("ok", "</s>"), ids.get(3));
        assertEquals(2, load(settings("c4_demo").optStage(DataSettings.Stage.PT).optPacking(false)).train().size());
        assertEquals(dir.resolve("dataset_info.json") + ": wiki_without_columns: a .txt file has one column, 'text' (one"
                + " record a line); give the entry \"columns\": {\"prompt\": \"text\"} and alpaca formatting, as"
                + " LLaMA-Factory's wiki_demo does", refusal("wiki_without_columns"));
        // named directly, a .txt file is plain text
        assertEquals(4, load(settings("wiki_demo.txt").optStage(DataSettings.Stage.PT).optPacking(false))
                .train().size());
    }

    @Test
    void skippedRecordsAreCountedByReasonAndTheFirstShownWithFileAndLine() throws Exception {
        Path file = dir.resolve("mixed.jsonl");
        StringBuilder lines = new StringBuilder("{\"instruction\": \"hi\", \"output\": \"fine\"}\n");
        for (int i = 0; i < 6; i++) {
            lines.append("{\"instruction\": \"hi\"}\n");
        }
        lines.append("{\"instruction\": \n");
        Files.writeString(file, lines);
        List<String> info = new ArrayList<>();
        List<String> detail = new ArrayList<>();
        DataPipeline.load(settings("mixed.jsonl").optDatasetDir(dir).build(), tokenizer,
                new DataLog(info::add, detail::add));
        assertEquals(List.of("mixed.jsonl: 1 records kept, 7 skipped (6 no response (output) to train on, 1 invalid JSON)"),
                info);
        assertEquals(ExampleStream.WARNINGS, detail.size());
        assertEquals(file + ":2: skipped record: no response (output) to train on", detail.get(0));
        assertEquals(file + ":6: skipped record: no response (output) to train on", detail.get(4));
    }

    @Test
    void datasetWithoutAnyUsableRecordSaysWhyItsRecordsWereSkipped() throws Exception {
        Files.writeString(dir.resolve("none.jsonl"), "{\"instruction\": \"hi\"}\n[1]\n{\"instruction\": \"bye\"}\n");
        assertEquals("dataset none.jsonl: no usable record (3 skipped: 2 no response (output) to train on, 1 not a JSON"
                + " object; --debug shows the first 5 with file and line)", refusal("none.jsonl"));
    }

    @Test
    void withoutTemplateTheTokenizersChatTemplateIsRecognisedKeepingItsEos() throws Exception {
        Path model = TinyTokenizer.write(dir.resolve("qwen3"), Map.of("eos_token", "</s>", "chat_template",
                "{%- if enable_thinking is defined and enable_thinking is false %}{{- '<think>\\n\\n</think>\\n\\n' }}"
                        + "{%- endif %}{{- '<|im_start|>' + message.role + '\\n' + content + '<|im_end|>\\n' }}"));
        Files.writeString(dir.resolve("d.jsonl"), "{\"instruction\": \"hi\", \"output\": \"fine\"}\n");
        List<String> info = new ArrayList<>();
        try (TemplateTokenizer qwen3 = TemplateTokenizer.open(model)) {
            DataPipeline pipeline = DataPipeline.load(DataSettings.builder().setDatasets(List.of("d.jsonl"))
                    .optDatasetDir(dir).build(), qwen3, new DataLog(info::add, line -> { }));
            assertEquals("template: not set: using qwen3, recognised from the chat_template in "
                    + model.resolve("tokenizer_config.json") + " (LLaMA-Factory would render that Jinja into its own"
                    + " slots instead; set template: qwen3 to train as LLaMA-Factory does with it)", info.get(0));
            assertArrayEquals(ids("<|im_start|>", "user", "\n", "hi", "<|im_end|>", "\n", "<|im_start|>", "assistant",
                    "\n"), Arrays.copyOf(pipeline.train().get(0).inputIds(), 9));
            // LLaMA-Factory's parse_template keeps the tokenizer's eos; the registered qwen3 would make it <|im_end|>
            assertEquals("</s>", pipeline.tokenizer().eosToken());
        }
    }

    @Test
    void withoutTemplateOrChatTemplateTheEmptyTemplateIsUsedAndSaid() throws Exception {
        Files.writeString(dir.resolve("d.jsonl"), "{\"instruction\": \"hi\", \"output\": \"fine\"}\n");
        List<String> info = new ArrayList<>();
        DataPipeline pipeline = DataPipeline.load(DataSettings.builder().setDatasets(List.of("d.jsonl"))
                .optDatasetDir(dir).build(), tokenizer, new DataLog(info::add, line -> { }));
        assertEquals("template: not set and " + dir.resolve("model").resolve("tokenizer_config.json")
                + " has no chat_template: using empty, as LLaMA-Factory does", info.get(0));
        assertArrayEquals(ids("hi", "fine"), pipeline.train().get(0).inputIds());
    }
}
