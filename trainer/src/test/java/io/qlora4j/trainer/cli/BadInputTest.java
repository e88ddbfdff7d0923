package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.checkpoint.TinyModels;
import io.qlora4j.trainer.Poison;
import io.qlora4j.trainer.TinyModel;
import io.qlora4j.trainer.TinyTasks;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * Inputs that used to be accepted silently, crash the JVM or fail with an {@code internal error}: each is refused in
 * one line naming the file or key and what was expected (or, where the run can go on, warned about with a count).
 */
class BadInputTest {
    @TempDir
    Path dir;

    private final CliRun cli = new CliRun();

    @Test
    void aCommandLinePicocliCannotParseGetsOneLineAndStatus2() {
        assertEquals(2, cli.run("train", "--bogus"));
        assertEquals("qlora4j train: Unknown option: '--bogus' (qlora4j train --help shows the usage)", cli.err().strip());
        assertEquals(2, cli.run("init-model", "a", "b", "--std", "abc"));
        assertEquals("qlora4j init-model: Invalid value for option '--std': 'abc' is not a double (qlora4j init-model"
                + " --help shows the usage)", cli.err().strip());
        assertEquals(2, cli.run("trian", "job.yaml"));
        String err = cli.err().strip();
        assertEquals(1, err.lines().count(), err);
        assertTrue(err.startsWith("qlora4j: Unmatched arguments from index 0: 'trian', 'job.yaml'; did you mean"), err);
        assertTrue(err.contains("train"), err);
        // nothing given at all: the usage is the answer
        assertEquals(2, cli.run());
        assertTrue(cli.err().contains("Usage: qlora4j"), cli.err());
    }

    /** Runs and expects exit 1 with exactly one line on stderr, which it returns. */
    private String refused(String... args) {
        assertEquals(1, cli.run(args), cli.out() + cli.err());
        String err = cli.err().strip();
        assertEquals(1, err.lines().count(), err);
        assertFalse(err.contains("internal error"), err);
        return err;
    }

    private String[] train(Path base, Path data, Path out, String... more) {
        List<String> args = new ArrayList<>(List.of("train", "model_name_or_path=" + base, "dataset=" + data,
                "output_dir=" + out, "finetuning_type=full", "max_steps=1", "learning_rate=0.01"));
        args.addAll(List.of(more));
        return args.toArray(String[]::new);
    }

    @Test
    void trainSaysWhatItSkippedAndRefusesToTrainOnNothing() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 3);
        Path data = dir.resolve("d.jsonl");
        Files.writeString(data, "{\"instruction\": \"copy\", \"input\": \"a b\", \"output\": \"a b\"}\n{\"instruction\": \n"
                + "{\"instruction\": \"copy\", \"input\": \"c\", \"output\": \"c\"}\n[1, 2]\n");
        assertEquals(0, cli.run(train(base, data, dir.resolve("a"))), cli.err());
        assertTrue(cli.out().contains("warning: dataset " + data + ": skipped 2 of 4 records (broken, or not in the"
                + " dataset's format)"), cli.out());
        // cutoff_len 1 leaves a single prompt token per example: nothing to learn, which used to train at loss 0.0
        assertEquals("qlora4j train: dataset: none of the 2 training examples has a token to learn after cutoff_len 1"
                + " (every label is masked); raise cutoff_len or check that the examples have answers",
                refused(train(base, data, dir.resolve("b"), "cutoff_len=1")));
        assertFalse(Files.exists(dir.resolve("b")), "nothing written");
        assertEquals(0, cli.run(train(base, data, dir.resolve("c"), "cutoff_len=100000")), cli.err());
        assertTrue(cli.out().contains("warning: cutoff_len 100000 is above the model's max_position_embeddings "),
                cli.out());
    }

    /**
     * CVXQ's calibration and validation files: a line that is not JSON or not UTF-8 names the file and line, and a
     * missing validation file names cvxq_validation; they were "I/O error" lines without the file, or named dataset.
     */
    @Test
    void cvxqCalibrationFilesAreNamedWithTheirLineAndKey() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 3);
        Path good = Files.writeString(dir.resolve("good.jsonl"), "{\"text\": \"copy a b c d e f g h\"}\n");
        Path json = Files.writeString(dir.resolve("bad.jsonl"), "{\"text\": \"copy a b c d e f g h\"}\nnot json\n");
        Path utf8 = Files.write(dir.resolve("bad.txt"), new byte[] {'c', 'o', 'p', 'y', ' ', (byte) 0xFF, '\n'});
        String[] cvxq = {"quantize", "model_name_or_path=" + base, "quantization_method=cvxq", "target_bits=3",
            "cutoff_len=4", "max_samples=4", "export_dir=" + dir.resolve("q")};
        assertEquals("qlora4j quantize: dataset: " + json + ":2: not valid JSON: Unrecognized token 'not': was"
                + " expecting (JSON String, Number, Array, Object or token 'null', 'true' or 'false')",
                refused(with(cvxq, "dataset=" + json)));
        assertEquals("qlora4j quantize: dataset: " + utf8 + ":1: not valid UTF-8", refused(with(cvxq, "dataset=" + utf8)));
        assertEquals("qlora4j quantize: cvxq_validation: " + dir.resolve("none.txt") + ": no such file",
                refused(with(cvxq, "dataset=" + good, "cvxq_validation=" + dir.resolve("none.txt"))));
        assertFalse(Files.exists(dir.resolve("q")), "nothing written");
    }

    private static String[] with(String[] args, String... more) {
        List<String> all = new ArrayList<>(List.of(args));
        all.addAll(List.of(more));
        return all.toArray(String[]::new);
    }

    /** An unknown held-out dataset is refused naming eval_dataset, the key that gave it, not dataset. */
    @Test
    void anUnknownEvalDatasetNamesItsKey() throws Exception {
        Path base = TinyModel.write(dir.resolve("base"), 3);
        Path data = TinyTasks.write(dir.resolve("copy.json"), "copy", 4, 2);
        assertEquals("qlora4j train: eval_dataset: unknown dataset 'nope' (no dataset_info.json in " + dir
                + ", and no such file)", refused(train(base, data, dir.resolve("a"), "eval_dataset=nope",
                        "dataset_dir=" + dir)));
        assertFalse(Files.exists(dir.resolve("a")), "nothing written");
    }

    @Test
    void jobValuesOfTheWrongShapeAndOutputDirsThatAreFilesAreRefused() throws Exception {
        Path yaml = Files.writeString(dir.resolve("job.yaml"), "output_dir: {a: 1}\n");
        assertEquals("qlora4j train: " + yaml + ": output_dir: expected a string, got a YAML mapping",
                refused("train", yaml.toString()));
        Path base = TinyModel.write(dir.resolve("base"), 3);
        Path data = TinyTasks.write(dir.resolve("copy.json"), "copy", 4, 2);
        Path file = Files.writeString(dir.resolve("out"), "not a directory");
        assertEquals("qlora4j train: output_dir " + file + " is a file; expected a directory (it is created when"
                + " missing)", refused(train(base, data, file)));
        Path garbage = Files.writeString(dir.resolve("g.json"), Files.readString(data) + "\n{\"extra\": 1}\n");
        assertTrue(refused(train(base, garbage, dir.resolve("g"))).endsWith(": unexpected text after the closing ] of"
                + " the JSON array"), cli.err());
        // 4 heads x 3 x (2^28)^2 attention scores of 4 bytes: past 2^63, which used to print negative sizes
        assertEquals("qlora4j inspect: per_device_train_batch_size x cutoff_len: a batch of 3 x 268435456 tokens needs"
                + " more than 2^63 bytes; nothing can run it",
                refused("inspect", "model_name_or_path=" + base, "cutoff_len=268435456", "per_device_train_batch_size=3"));
    }

    @Test
    void evalAndGenerateRefuseBrokenTokenizersWeightsAndTextByFile() throws Exception {
        Path model = TinyModels.writeTinyModel(dir.resolve("model"));
        Path txt = dir.resolve("eval.txt");
        Files.write(txt, "w5 w9\nw3 w4\nw7 \u00e9".getBytes(StandardCharsets.ISO_8859_1));
        assertEquals("qlora4j eval: " + txt + ":3: not valid UTF-8",
                refused("eval", "model_name_or_path=" + model, "dataset=" + txt));

        Path tokenizer = model.resolve("tokenizer.json");
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = (ObjectNode) json.readTree(tokenizer.toFile());
        String original = Files.readString(tokenizer);
        ((ObjectNode) root.path("post_processor").path("single").path(0).path("SpecialToken")).put("id", "<bos>");
        json.writeValue(tokenizer.toFile(), root);
        String undefined = "qlora4j generate: " + tokenizer + ": post_processor.single uses the special token '<bos>',"
                + " which post_processor.special_tokens does not define";
        assertEquals(undefined, refused("generate", "model_name_or_path=" + model, "prompt=w5"));
        assertEquals(undefined.replace("generate", "eval"), refused("eval", "model_name_or_path=" + model,
                "dataset=" + dir.resolve("eval.txt")));
        Files.writeString(tokenizer, original.replace("\"w49\": 49", "\"w49\": 100000"));
        assertEquals("qlora4j generate: " + tokenizer + ": model.vocab token 'w49' has id 100000, but the model has "
                + TinyModels.VOCAB + " embeddings (vocab_size in " + model.resolve("config.json") + "); use the model's"
                + " own tokenizer", refused("generate", "model_name_or_path=" + model, "prompt=w5"));
        Files.writeString(tokenizer, original);

        String tensor = Poison.firstValue(model.resolve("model.safetensors"), "model");
        assertEquals("qlora4j eval: " + model.resolve("model.safetensors") + ": tensor '" + tensor + "' holds NaN at"
                + " element 0; expected finite numbers", refused("eval", "model_name_or_path=" + model, "dataset=" + txt));
    }
}
