package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertArrayEquals;
import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.family.FamilyCheckpoint;
import io.qlora4j.model.family.ReferenceDecoder.Spec;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.model.safetensors.TensorInfo;
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.trainer.TinyModel;
import io.qlora4j.trainer.TinyTasks;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Comparator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.stream.Stream;
import org.junit.jupiter.api.io.TempDir;
import org.junit.jupiter.params.ParameterizedTest;
import org.junit.jupiter.params.provider.MethodSource;

/**
 * The commands on every family, from a checkpoint written as transformers writes it: {@code eval --json} equals the
 * float64 reference's mean cross-entropy within 1e-4 relative, dense and NF4; a QLoRA run with
 * {@code lora_target: all} trains the family's own projections and resumes bit-identical; {@code generate} and
 * {@code inspect} run.
 */
class FamilyCommandsTest {
    private static final ObjectMapper JSON = new ObjectMapper();
    private static final String TEXT = "copy a b c d e f g h";

    @TempDir
    Path dir;

    private final CliRun cli = new CliRun();

    static Stream<Spec> families() {
        return FamilyCheckpoint.oneOfEachFamily(2, TinyModel.VOCAB.size()).stream();
    }

    @ParameterizedTest
    @MethodSource("families")
    void evalTrainResumeGenerateAndInspectOnEveryFamily(Spec spec) throws Exception {
        FamilyCheckpoint checkpoint = new FamilyCheckpoint(spec, 31);
        Path base = writeBase(checkpoint, dir.resolve("base"));

        int[] ids = Arrays.stream(TinyModel.ids(TEXT)).mapToInt(i -> (int) i).toArray();
        Path text = Files.writeString(dir.resolve("eval.txt"), TEXT + "\n");
        double dense = checkpoint.reference().nll(ids) / (ids.length - 1);
        assertEquals(dense, evalLoss(base, text), 1e-4 * dense);
        double nf4 = checkpoint.quantizedReference(BlockwiseQuantizer.builder().build()).nll(ids) / (ids.length - 1);
        assertEquals(nf4, evalLoss(base, text, "quantization_bit=4"), 1e-4 * nf4);

        Path dataset = TinyTasks.write(dir.resolve("reverse.json"), "reverse", 8, 3);
        Path straight = dir.resolve("straight");
        train(base, dataset, straight);
        Map<String, float[]> adapter = tensors(straight.resolve("adapter_model.safetensors"));
        List<String> names = spec.fused() ? List.of("qkv_proj", "o_proj", "gate_up_proj", "down_proj")
                : List.of("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj");
        assertEquals(2 * 2 * names.size(), adapter.size(), "A and B of every projection of 2 layers");
        for (String name : names) {
            assertTrue(adapter.keySet().stream().anyMatch(k -> k.contains("." + name + ".lora_B")), name);
        }
        assertEquals(names.stream().sorted().toList(), JSON.convertValue(
                JSON.readTree(straight.resolve("adapter_config.json").toFile()).get("target_modules"), List.class));

        Path stopped = dir.resolve("stopped");
        train(base, dataset, stopped);
        deleteRecursively(stopped.resolve("checkpoint-4"));
        Files.delete(stopped.resolve("adapter_model.safetensors"));
        train(base, dataset, stopped, "resume_from_checkpoint=" + stopped.resolve("checkpoint-2"));
        Map<String, float[]> resumed = tensors(stopped.resolve("adapter_model.safetensors"));
        assertEquals(adapter.keySet(), resumed.keySet());
        adapter.forEach((name, values) -> assertArrayEquals(values, resumed.get(name), name));

        assertEquals(0, cli.run("generate", "model_name_or_path=" + base, "adapter_name_or_path=" + straight,
                "prompt=copy a b", "max_new_tokens=4"), cli.err());
        assertEquals(0, cli.run("inspect", "model_name_or_path=" + base), cli.err());
        assertTrue(cli.out().contains(spec.modelType() + ", 2 layers"), cli.out());
    }

    /** {@code checkpoint} written as transformers writes it (float32, its family's keys) with the tiny tokenizer. */
    static Path writeBase(FamilyCheckpoint checkpoint, Path dir) throws Exception {
        Path base = checkpoint.write(dir, DType.F32, checkpoint.config(false,
                FamilyCheckpoint.familyKeys(checkpoint.spec)));
        TinyModel.writeTokenizer(base);
        return base;
    }

    private double evalLoss(Path base, Path text, String... more) throws Exception {
        List<String> args = new ArrayList<>(List.of("eval", "model_name_or_path=" + base, "dataset=" + text,
                "--json"));
        args.addAll(List.of(more));
        assertEquals(0, cli.run(args.toArray(String[]::new)), cli.err());
        List<String> lines = cli.out().lines().toList();
        return JSON.readTree(lines.get(lines.size() - 1)).path("loss").asDouble();
    }

    private void train(Path base, Path dataset, Path output, String... more) {
        List<String> args = new ArrayList<>(List.of("train", "model_name_or_path=" + base,
                "dataset=" + dataset, "output_dir=" + output, "quantization_bit=4", "lora_rank=4", "lora_target=all",
                "lora_dropout=0.1", "learning_rate=0.01", "per_device_train_batch_size=2", "seed=5", "max_steps=4",
                "save_steps=2", "logging_steps=1"));
        args.addAll(List.of(more));
        assertEquals(0, cli.run(args.toArray(String[]::new)), cli.err());
    }

    private static Map<String, float[]> tensors(Path file) throws Exception {
        Map<String, float[]> out = new LinkedHashMap<>();
        try (SafetensorsReader reader = SafetensorsReader.open(file)) {
            for (TensorInfo info : reader.tensors()) {
                out.put(info.name(), reader.floats(info.name()));
            }
        }
        return out;
    }

    private static void deleteRecursively(Path path) throws Exception {
        try (Stream<Path> walk = Files.walk(path)) {
            for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                Files.delete(p);
            }
        }
    }
}
