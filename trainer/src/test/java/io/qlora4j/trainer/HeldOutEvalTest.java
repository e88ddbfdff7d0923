package io.qlora4j.trainer;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.data.Batch;
import io.qlora4j.data.DataException;
import io.qlora4j.data.TemplateTokenizer;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.llama.LlamaFamily;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.stream.Collectors;
import java.util.stream.LongStream;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** {@link HeldOutEval} on a tiny random model against a greedy decode and a float64 loss computed here. */
class HeldOutEvalTest {
    /** "Human: copy\na b c</s>\nAssistant:" as the default template renders it, piece by piece. */
    private static final String PROMPT = "Human : copy \n a b c </s> \n Assistant :";
    private static final int NEW_TOKENS = 3;

    @TempDir
    Path dir;

    /** Greedy ids after {@code prompt}: a full forward per token, argmax of the last position. */
    private static long[] greedy(CausalLM model, NDManager manager, long[] prompt, int n) {
        long[] ids = prompt;
        for (int i = 0; i < n; i++) {
            try (NDManager m = manager.newSubManager()) {
                float[] logits = model.forward(m.create(ids, new Shape(1, ids.length)), null).toFloatArray();
                int vocab = TinyModel.VOCAB.size();
                int last = (ids.length - 1) * vocab;
                int best = 0;
                for (int v = 1; v < vocab; v++) {
                    best = logits[last + v] > logits[last + best] ? v : best;
                }
                ids = LongStream.concat(Arrays.stream(ids), LongStream.of(best)).toArray();
            }
        }
        return Arrays.copyOfRange(ids, prompt.length, ids.length);
    }

    private static String pieces(long[] ids) {
        return Arrays.stream(ids).mapToObj(id -> TinyModel.VOCAB.get((int) id)).collect(Collectors.joining(" "));
    }

    @Test
    void exactMatchCountsGreedyAnswersEqualToTheRecordAndLossIsTheMeanOverAnswerTokens() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 7);
        try (NDManager manager = NDManager.newBaseManager();
                TemplateTokenizer tokenizer = TemplateTokenizer.open(base)) {
            CausalLM model = ModelLoader.builder().build().load(base, manager);
            long[] prompt = TinyModel.ids(PROMPT);
            long[] answer = greedy(model, manager, prompt, NEW_TOKENS);
            assertTrue(Arrays.stream(answer).allMatch(id -> id > TinyModel.VOCAB.indexOf("<unk>")),
                    "the seed gives an answer of plain pieces: " + pieces(answer));
            long[] wrong = answer.clone();
            wrong[NEW_TOKENS - 1] = wrong[NEW_TOKENS - 1] == TinyModel.VOCAB.indexOf("a")
                    ? TinyModel.VOCAB.indexOf("b") : TinyModel.VOCAB.indexOf("a");
            Path file = dir.resolve("held-out.json");
            new ObjectMapper().writeValue(file.toFile(), List.of(
                    Map.of("instruction", "copy", "input", "a b c", "output", pieces(answer)),
                    Map.of("instruction", "copy", "input", "a b c", "output", pieces(wrong))));

            EvalReport report = HeldOutEval.load(JobConfig.of("eval_dataset=" + file, "template=default", "predict_with_generate=true",
                    "max_new_tokens=" + NEW_TOKENS, "per_device_eval_batch_size=2"), tokenizer).run(model);

            assertEquals(0.5, report.exactMatch());
            assertTrue(report.predictions().get(0).exact());
            assertFalse(report.predictions().get(1).exact());
            assertEquals(pieces(answer).strip(), report.predictions().get(1).generated());
            assertEquals(pieces(wrong), report.predictions().get(1).expected());
            double expectedLoss = TrainStepTest.referenceLoss(model, manager,
                    List.of(answerBatch(prompt, answer), answerBatch(prompt, wrong)));
            assertEquals(expectedLoss, report.loss(), 1e-4);
        }
    }

    @Test
    void lossIsTransformersEvalLossTheExampleMeanOfEachBatchsTokenMean() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 7);
        List<String> inputs = List.of("a", "b c d", "e f g h i j");
        List<Map<String, String>> records = inputs.stream()
                .map(in -> Map.of("instruction", "copy", "input", in, "output", in)).toList();
        Path file = dir.resolve("held-out.json");
        new ObjectMapper().writeValue(file.toFile(), records);
        try (NDManager manager = NDManager.newBaseManager();
                TemplateTokenizer tokenizer = TemplateTokenizer.open(base)) {
            CausalLM model = ModelLoader.builder().build().load(base, manager);
            List<Batch> rows = inputs.stream().map(in -> answerBatch(
                    TinyModel.ids("Human : copy \n " + in + " </s> \n Assistant :"), TinyModel.ids(in))).toList();

            EvalReport report = HeldOutEval.load(JobConfig.of("eval_dataset=" + file, "template=default",
                    "per_device_eval_batch_size=2"), tokenizer).run(model);

            // batches [0 1] and [2] in file order, 3 + 5 and 8 labelled tokens: evaluation_loop repeats each batch's
            // token mean once per example and takes the mean
            double expected = (2 * TrainStepTest.referenceLoss(model, manager, rows.subList(0, 2))
                    + TrainStepTest.referenceLoss(model, manager, rows.subList(2, 3))) / 3;
            assertEquals(expected, report.loss(), 1e-4);
            double tokenMean = TrainStepTest.referenceLoss(model, manager, rows);
            assertTrue(Math.abs(tokenMean - expected) > 1e-3, "the two means differ here: " + tokenMean + " " + expected);
        }
    }

    @Test
    void lossOnlyEvalLabelsEveryAnswerUnlessTheJobMasksHistory() throws Exception {
        // LLaMA-Factory scores an eval_dataset without predict_with_generate through its supervised processor, with
        // the job's mask_history (false by default: every assistant turn labelled)
        Path base = TinyModel.write(dir.resolve("base"), 7);
        Path file = dir.resolve("held-out.json");
        new ObjectMapper().writeValue(file.toFile(), List.of(Map.of("instruction", "copy", "input", "b", "output", "b",
                "history", List.of(List.of("copy\na", "a")))));
        String[] pieces = "Human : copy \n a </s> \n Assistant : a </s> \n Human : copy \n b </s> \n Assistant : b </s> \n"
                .split(" ");
        long[] ids = TinyModel.ids(String.join(" ", pieces));
        try (NDManager manager = NDManager.newBaseManager();
                TemplateTokenizer tokenizer = TemplateTokenizer.open(base)) {
            CausalLM model = ModelLoader.builder().build().load(base, manager);
            for (boolean maskHistory : new boolean[] {false, true}) {
                long[] labels = new long[ids.length];
                Arrays.fill(labels, -100);
                // "a </s> \n" at 9-11 and "b </s> \n" at 21-23 are the answers
                for (int i = 0; i < ids.length; i++) {
                    boolean last = i >= 21;
                    if ((i >= 9 && i <= 11 && !maskHistory) || last) {
                        labels[i] = ids[i];
                    }
                }
                long[] ones = new long[ids.length];
                Arrays.fill(ones, 1);
                Batch row = new Batch(1, ids.length, ids, ones, LongStream.range(0, ids.length).toArray(), labels);
                EvalReport report = HeldOutEval.load(JobConfig.of("eval_dataset=" + file, "template=default",
                        "mask_history=" + maskHistory), tokenizer).run(model);
                assertEquals(TrainStepTest.referenceLoss(model, manager, List.of(row)), report.loss(), 1e-4,
                        "mask_history " + maskHistory);
            }
        }
    }

    /** prompt + answer + "</s> \n", labelled on the answer and the template's "</s>\n" only. */
    static Batch answerBatch(long[] prompt, long[] answer) {
        long[] ids = LongStream.concat(LongStream.concat(Arrays.stream(prompt), Arrays.stream(answer)),
                Arrays.stream(TinyModel.ids("</s> \n"))).toArray();
        long[] labels = ids.clone();
        Arrays.fill(labels, 0, prompt.length, -100);
        long[] ones = new long[ids.length];
        Arrays.fill(ones, 1);
        return new Batch(1, ids.length, ids, ones, LongStream.range(0, ids.length).toArray(), labels);
    }

    @Test
    void generatedAnswersEndAtTheTemplatesStopWordsAsLlamaFactoryPredictDoes() throws Exception {
        // llama3 ends answers with <|eot_id|> (its eos there) and also stops at <|eom_id|>, a stop word that is not the
        // tokenizer's eos: a greedy answer "b c <|eom_id|> d e" is the answer "b c"
        List<String> vocab = new ArrayList<>(List.of("<pad>", "<|begin_of_text|>", "<|end_of_text|>", "<unk>",
                "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>", "<|eom_id|>", "user", "assistant", "\n"));
        for (char c = 'a'; vocab.size() < TinyModel.VOCAB.size(); c++) {
            vocab.add(String.valueOf(c));
        }
        Map<String, String> next = Map.of("\n", "b", "b", "c", "c", "<|eom_id|>", "<|eom_id|>", "d", "d", "e");
        Path base = chainModel(dir.resolve("base"), vocab, next);
        TinyModel.writeTokenizer(base, vocab, 8, Map.of("bos_token", "<|begin_of_text|>", "eos_token",
                "<|end_of_text|>", "pad_token", "<pad>", "add_bos_token", false));
        Path file = dir.resolve("held-out.json");
        new ObjectMapper().writeValue(file.toFile(), List.of(Map.of("instruction", "a", "output", "b c")));
        try (NDManager manager = NDManager.newBaseManager();
                TemplateTokenizer tokenizer = TemplateTokenizer.open(base)) {
            CausalLM model = ModelLoader.builder().build().load(base, manager);
            EvalReport report = HeldOutEval.load(JobConfig.of("eval_dataset=" + file, "template=llama3",
                    "predict_with_generate=true", "max_new_tokens=5"), tokenizer).run(model);
            assertEquals("b c", report.predictions().get(0).expected());
            assertEquals("b c", report.predictions().get(0).generated());
            assertEquals(1.0, report.exactMatch());
        }
    }

    /**
     * A one-layer Llama over {@code vocab} whose greedy next token depends on the last token alone, as {@code next}
     * says: one-hot embeddings, every block projection zero (the residual stream is the embedding), and lm_head rows
     * that pick the token from its one-hot input; a token {@code next} does not map has all logits 0 (greedy: id 0).
     */
    private static Path chainModel(Path dir, List<String> vocab, Map<String, String> next) throws Exception {
        int v = vocab.size();
        DecoderConfig config = LlamaFamily.builder(v, 2 * v, 1, 4, v).build();
        Files.createDirectories(dir);
        try (SafetensorsWriter writer = SafetensorsWriter.builder(dir).build()) {
            float[] identity = new float[v * v];
            for (int i = 0; i < v; i++) {
                identity[i * v + i] = 1;
            }
            writer.addFloats("model.embed_tokens.weight", DType.F32, new long[] {v, v}, identity);
            for (String norm : List.of("input_layernorm", "post_attention_layernorm")) {
                writer.addFloats("model.layers.0." + norm + ".weight", DType.F32, new long[] {v}, ones(v));
            }
            for (String name : config.linearNames()) {
                long[] inOut = config.inOut(name);
                writer.addFloats("model.layers.0." + name + ".weight", DType.F32, new long[] {inOut[1], inOut[0]},
                        new float[(int) (inOut[0] * inOut[1])]);
            }
            writer.addFloats("model.norm.weight", DType.F32, new long[] {v}, ones(v));
            float[] head = new float[v * v];
            next.forEach((from, to) -> head[vocab.indexOf(to) * v + vocab.indexOf(from)] = 1);
            writer.addFloats("lm_head.weight", DType.F32, new long[] {v, v}, head);
        }
        config.write(dir.resolve("config.json"));
        return dir;
    }

    private static float[] ones(int n) {
        float[] values = new float[n];
        Arrays.fill(values, 1f);
        return values;
    }

    @Test
    void heldOutRecordsAreReadAndRenderedWithTheJobsDataSettings() throws Exception {
        // LLaMA-Factory loads eval_dataset through the training data's loader: max_samples cuts it to its first
        // records, and the template renders the job's default_system ("System: {{content}}</s>\n" in default)
        Path base = TinyModel.write(dir.resolve("base"), 7);
        Path file = dir.resolve("held-out.json");
        new ObjectMapper().writeValue(file.toFile(), List.of(
                Map.of("instruction", "copy", "input", "a", "output", "a"),
                Map.of("instruction", "copy", "input", "b", "output", "b"),
                Map.of("instruction", "copy", "input", "c", "output", "c")));
        try (NDManager manager = NDManager.newBaseManager();
                TemplateTokenizer tokenizer = TemplateTokenizer.open(base)) {
            CausalLM model = ModelLoader.builder().build().load(base, manager);
            EvalReport report = HeldOutEval.load(JobConfig.of("eval_dataset=" + file, "template=default",
                    "predict_with_generate=true", "max_new_tokens=1", "max_samples=2", "default_system=reverse"),
                    tokenizer).run(model);
            assertEquals(2, report.examples());
            assertEquals(List.of("a", "b"), report.predictions().stream().map(EvalReport.Prediction::expected).toList());
            long[] prompt = TinyModel.ids("System : reverse </s> \n Human : copy \n b </s> \n Assistant :");
            assertEquals(tokenizer.decode(Arrays.stream(prompt).mapToInt(id -> (int) id).toArray()),
                    report.predictions().get(1).prompt());
        }
    }

    @Test
    void heldOutNumSamplesFollowTheTrainingDatasetsDrawsInOneNumpyStream() throws Exception {
        // numpy 2.4.6: np.random.seed(42); permutation(5)[:3] for the training dataset, then permutation(5)[:2] for
        // the held-out one gives records 3 and 1 (a stream of its own would give 1 and 4)
        Path base = TinyModel.write(dir.resolve("base"), 7);
        Path data = Files.createDirectories(dir.resolve("data"));
        StringBuilder lines = new StringBuilder();
        for (String letter : List.of("a", "b", "c", "d", "e")) {
            lines.append("{\"instruction\": \"copy\", \"input\": \"").append(letter).append("\", \"output\": \"")
                    .append(letter).append("\"}\n");
        }
        Files.writeString(data.resolve("letters.jsonl"), lines);
        Files.writeString(data.resolve("dataset_info.json"), """
                {"train": {"file_name": "letters.jsonl", "num_samples": 3},
                 "held": {"file_name": "letters.jsonl", "num_samples": 2}}
                """);
        try (NDManager manager = NDManager.newBaseManager();
                TemplateTokenizer tokenizer = TemplateTokenizer.open(base)) {
            CausalLM model = ModelLoader.builder().build().load(base, manager);
            EvalReport report = HeldOutEval.load(JobConfig.of("dataset=train", "eval_dataset=held",
                    "dataset_dir=" + data, "template=default", "predict_with_generate=true", "max_new_tokens=1"),
                    tokenizer).run(model);
            assertEquals(List.of("d", "b"), report.predictions().stream().map(EvalReport.Prediction::expected).toList());
            // a streaming job draws no num_samples (LLaMA-Factory's loader skips them when streaming): all five
            EvalReport streamed = HeldOutEval.load(JobConfig.of("dataset=train", "eval_dataset=held", "streaming=true",
                    "dataset_dir=" + data, "template=default", "predict_with_generate=true", "max_new_tokens=1"),
                    tokenizer).run(model);
            assertEquals(List.of("a", "b", "c", "d", "e"),
                    streamed.predictions().stream().map(EvalReport.Prediction::expected).toList());
        }
    }

    @Test
    void predictWithGenerateNeedsPromptsAndAnswers() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 7);
        try (TemplateTokenizer tokenizer = TemplateTokenizer.open(base)) {
            ConfigException e = assertThrows(ConfigException.class, () -> HeldOutEval.load(
                    JobConfig.of("eval_dataset=x.json", "predict_with_generate=true", "stage=pt"), tokenizer));
            assertTrue(e.getMessage().startsWith("predict_with_generate:"), e.getMessage());
            // plain texts too short for one block of cutoff_len: the key named is the held-out set's
            Path text = Files.writeString(dir.resolve("short.jsonl"), "{\"text\": \"a b c\"}\n");
            DataException empty = assertThrows(DataException.class, () -> HeldOutEval.load(
                    JobConfig.of("eval_dataset=" + text, "stage=pt", "cutoff_len=64"), tokenizer));
            assertEquals("eval_dataset: no sequence left (pt blocks need more than cutoff_len tokens)", empty.getMessage());
        }
    }
}
