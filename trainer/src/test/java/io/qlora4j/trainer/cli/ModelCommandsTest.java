package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.index.NDIndex;
import io.qlora4j.adapters.LoraAdapters;
import io.qlora4j.adapters.LoraSettings;
import io.qlora4j.model.checkpoint.TinyModels;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.generation.Perplexity;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class ModelCommandsTest {
    @TempDir
    Path dir;

    private final CliRun cli = new CliRun();


    private JsonNode lastJsonLine() throws Exception {
        List<String> lines = cli.out().lines().toList();
        return new ObjectMapper().readTree(lines.get(lines.size() - 1));
    }

    @Test
    void evalCountsEveryPredictedTokenAndReportsPerplexity() throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        Path txt = dir.resolve("eval.txt");
        // <s> is prepended by the post-processor: 4 + 3 ids, so 3 + 2 predicted tokens.
        Files.writeString(txt, "w5 w9 w3\nw7 w8\n");
        assertEquals(0, cli.run("eval", "model_name_or_path=" + model, "dataset=" + txt, "--json"), cli.err());
        JsonNode result = lastJsonLine();
        assertEquals(5, result.path("tokens").asInt());
        assertEquals(Math.exp(result.path("loss").asDouble()), result.path("perplexity").asDouble(), 1e-9);

        Path jsonl = dir.resolve("eval.jsonl");
        Files.writeString(jsonl, "{\"text\": \"w5 w9 w3\"}\n\n{\"text\": \"w7 w8\"}\n");
        assertEquals(0, cli.run("eval", "model_name_or_path=" + model, "dataset=" + jsonl, "--json"), cli.err());
        assertEquals(result, lastJsonLine(), "the same texts as JSONL give the same figures");

        assertEquals(0, cli.run("eval", "model_name_or_path=" + model, "dataset=" + txt, "cutoff_len=3", "--json"));
        assertEquals(2 + 2, lastJsonLine().path("tokens").asInt(), "truncated to 3 ids each");
    }

    @Test
    void evalOnTheNf4BaseDiffersFromTheDenseBase() throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        Path txt = dir.resolve("eval.txt");
        Files.writeString(txt, "w5 w9 w3 w11 w40 w41\n");
        assertEquals(0, cli.run("eval", "model_name_or_path=" + model, "dataset=" + txt, "--json"));
        double dense = lastJsonLine().path("loss").asDouble();
        assertEquals(0, cli.run("eval", "model_name_or_path=" + model, "dataset=" + txt, "quantization_bit=4", "--json"));
        double nf4 = lastJsonLine().path("loss").asDouble();
        assertTrue(dense != nf4 && Math.abs(dense - nf4) < 0.1 * dense, dense + " vs " + nf4);
    }

    @Test
    void evalAppliesAPeftAdapter() throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        Path txt = dir.resolve("eval.txt");
        Files.writeString(txt, "w5 w9 w3 w11 w40 w41\n");
        Path adapter = dir.resolve("adapter");
        double expected;
        try (NDManager m = NDManager.newBaseManager(); CausalLM base = ModelLoader.builder().build().load(model, m);
                LoraAdapters lora = LoraAdapters.attach(base, LoraSettings.defaults(4), m, 3)) {
            for (NDArray b : lora.parameters().values()) {
                if (b.getShape().get(1) == 4) {
                    b.set(new NDIndex("..."), 1f);
                }
            }
            lora.save(adapter, model.toString(), BaseFormats.DENSE);
            expected = Perplexity.of(base, new long[] {1, 5, 9, 3, 11, 40, 41}).loss();
        }
        assertEquals(0, cli.run("eval", "model_name_or_path=" + model, "dataset=" + txt, "--json"));
        double plain = lastJsonLine().path("loss").asDouble();
        assertEquals(0, cli.run("eval", "model_name_or_path=" + model, "adapter_name_or_path=" + adapter, "dataset=" + txt,
                "--json"), cli.err());
        double adapted = lastJsonLine().path("loss").asDouble();
        assertEquals(expected, adapted, 1e-6 * expected);
        assertTrue(Math.abs(adapted - plain) > 1e-3, plain + " vs " + adapted);
    }

    @Test
    void greedyGenerationIsRepeatableAndSpeaksTheVocabulary() throws Exception {
        Path model = TinyModels.writeTinyModel(dir);
        assertEquals(0, cli.run("generate", "model_name_or_path=" + model, "prompt=w5 w9", "max_new_tokens=6"), cli.err());
        String first = cli.out();
        assertTrue(first.strip().matches("((w\\d+|<unk>|</s>)\\s*)+") || first.isBlank(), first);
        assertEquals(0, cli.run("generate", "model_name_or_path=" + model, "prompt=w5 w9", "max_new_tokens=6"));
        assertEquals(first, cli.out());
        // no template and none in the tokenizer: a base model continues the text, nothing to say
        assertEquals("", cli.err());
        // past the context it still generates, with transformers' reminder
        String config = Files.readString(model.resolve("config.json"));
        Files.writeString(model.resolve("config.json"), config.substring(0, config.lastIndexOf('}'))
                + ", \"max_position_embeddings\": 6}");
        assertEquals(0, cli.run("generate", "model_name_or_path=" + model, "prompt=w5 w9", "max_new_tokens=6"));
        assertTrue(cli.err().contains("warning: the prompt's ") && cli.err().contains(" tokens and max_new_tokens 6"
                + " go past the model's max_position_embeddings 6 (" + model.resolve("config.json") + ")"), cli.err());
    }

    @Test
    void keysOfATrainingJobThatGenerateNeverReadsAreNamedOnceAfterIt() throws Exception {
        // LLaMA-Factory's chat refuses keys outside its argument classes; generate runs and names the ones it ignored
        Path model = TinyModels.writeTinyModel(dir);
        assertEquals(0, cli.run("generate", "model_name_or_path=" + model, "prompt=w5 w9", "max_new_tokens=2",
                "learning_rate=1e-3", "temperature=0", "output_dir=" + dir.resolve("out"), "lora_rank=4"), cli.err());
        assertEquals("warning: set but not used by qlora4j generate: learning_rate, output_dir, lora_rank\n",
                cli.err().replace(System.lineSeparator(), "\n"));
        // the same keys on a command that takes a training job say nothing
        assertEquals(0, cli.run("inspect", "model_name_or_path=" + model, "learning_rate=1e-3"), cli.err());
        assertEquals("", cli.err());
    }

    @Test
    void missingConfigAndMissingDatasetAreOneLine() throws Exception {
        Path empty = Files.createDirectories(dir.resolve("empty"));
        assertEquals(1, cli.run("eval", "model_name_or_path=" + empty, "dataset=" + dir.resolve("x.txt")));
        assertEquals("qlora4j eval: " + empty.resolve("config.json") + ": file not found", cli.err().strip());
        Path model = TinyModels.writeTinyModel(dir);
        assertEquals(1, cli.run("eval", "model_name_or_path=" + model, "dataset=" + dir.resolve("x.txt")));
        assertEquals("qlora4j eval: dataset: " + dir.resolve("x.txt") + ": no such file", cli.err().strip());
        assertEquals(1, cli.run("eval", "model_name_or_path=" + model, "dataset=" + empty));
        assertEquals("qlora4j eval: dataset: " + empty + " is a directory; expected one text file (.txt, one text a"
                + " line, or .jsonl with a \"text\" field)", cli.err().strip());
    }
}
