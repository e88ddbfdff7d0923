package io.qlora4j.bench;

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ObjectNode;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.trainer.JobPlan;
import io.qlora4j.trainer.cli.Main;
import io.qlora4j.trainer.config.JobConfig;
import java.io.BufferedWriter;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;
import java.util.stream.Stream;

/**
 * A plain {@code qlora4j train} run of the ~100M model (QLoRA NF4+DQ, LoRA r 16 on all projections, packed batches
 * of 4 x 256 tokens, recompute, paged_adamw_32bit), measured from outside: the command runs in its own JVM with the
 * launcher's settings, and this process reads that JVM's {@code /proc/<pid>/status} {@code VmHWM} every 20 ms until it
 * exits. The checkpoint is random (bf16), its tokenizer a word-level one of the model's 32000 words, the data random
 * words; the run's memory plan ({@code qlora4j inspect} of the same job) is printed beside the measurement.
 */
public final class TrainCommandMemory {
    private static final int VOCAB = 32000;

    private TrainCommandMemory() {}

    /**
     * The measurement of one run.
     *
     * @param hwm the train process's peak RSS
     * @param planned its plan's host bytes
     * @param seconds the run's wall time
     */
    record Result(long hwm, long planned, double seconds) {}

    /** Runs it with {@code steps} optimizer steps (default 4) and prints the figures. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        int steps = args.length > 0 ? Integer.parseInt(args[0]) : 4;
        System.out.println(Machine.describe());
        Result r = measure(steps);
        System.out.printf(Locale.ROOT, "train ~100M, 4 x 256 packed, r 16, recompute, paged_adamw_32bit, %d steps: peak"
                + " RSS %.0f MB, planned %.0f MB, RSS / plan %.3f (%.0f s)%n", steps, r.hwm() / 1e6, r.planned() / 1e6,
                (double) r.hwm() / r.planned(), r.seconds());
    }

    /** Writes the model, tokenizer and data, runs {@code train} in a child JVM and returns its peak against the plan. */
    static Result measure(int steps) throws Exception {
        try (RandomCheckpoint checkpoint = RandomCheckpoint.write(BenchModels.hundredMillion(), DType.BF16, 11)) {
            writeTokenizer(checkpoint.dir());
            Path work = Files.createTempDirectory("qlora4j-train-rss-");
            try {
                Path data = writeData(work.resolve("words.jsonl"), 4 * 257 * (steps + 1));
                List<String> job = List.of("model_name_or_path=" + checkpoint.dir(), "dataset=" + data,
                        "output_dir=" + work.resolve("out"), "stage=pt", "packing=true", "cutoff_len=256",
                        "per_device_train_batch_size=4", "quantization_bit=4", "lora_rank=16",
                        "gradient_checkpointing=true", "optim=paged_adamw_32bit", "max_steps=" + steps,
                        "logging_steps=1", "save_steps=100000", "device=cpu", "template=empty");
                long planned = plan(job);
                List<String> command = new ArrayList<>(List.of(Path.of(System.getProperty("java.home"), "bin", "java")
                        .toString()));
                command.addAll(ChildJvm.HEAP);
                String threads = System.getProperty("ai.djl.pytorch.num_threads");
                if (threads != null) {
                    command.add("-Dai.djl.pytorch.num_threads=" + threads);
                }
                command.addAll(List.of("-Dai.djl.offline=true", "-cp", System.getProperty("java.class.path"),
                        Main.class.getName(), "train"));
                command.addAll(job);
                ProcessBuilder builder = new ProcessBuilder(command).inheritIO();
                ChildJvm.launcherEnvironment(builder);
                long start = System.nanoTime();
                Process process = builder.start();
                Path status = Path.of("/proc", String.valueOf(process.pid()), "status");
                long hwm = 0;
                while (process.isAlive()) {
                    hwm = Math.max(hwm, readHwm(status));
                    Thread.sleep(20);
                }
                if (process.waitFor() != 0) {
                    throw new IllegalStateException("train exited with status " + process.exitValue());
                }
                return new Result(hwm, planned, (System.nanoTime() - start) / 1e9);
            } finally {
                RandomCheckpoint.deleteTree(work);
            }
        }
    }

    /** The job's plan ({@link JobPlan}, what {@code train} prints at its start): host bytes, the process's peak. */
    private static long plan(List<String> job) throws Exception {
        return JobPlan.of(JobConfig.of(job.toArray(String[]::new))).planner().plan().hostBytes();
    }

    private static long readHwm(Path status) {
        try (Stream<String> lines = Files.lines(status)) {
            return lines.filter(l -> l.startsWith("VmHWM:")).findFirst()
                    .map(l -> Long.parseLong(l.replaceAll("[^0-9]", "")) * 1024).orElse(0L);
        } catch (IOException | RuntimeException e) {
            return 0; // the process has just exited
        }
    }

    /** A word-level tokenizer of the words {@code w0 .. w31995} after four special tokens, split on spaces. */
    private static void writeTokenizer(Path dir) throws IOException {
        ObjectMapper json = new ObjectMapper();
        ObjectNode root = json.createObjectNode().put("version", "1.0");
        root.putNull("truncation");
        root.putNull("padding");
        String[] special = {"<unk>", "<s>", "</s>", "<pad>"};
        var added = root.putArray("added_tokens");
        for (int i = 0; i < special.length; i++) {
            added.addObject().put("id", i).put("content", special[i]).put("single_word", false).put("lstrip", false)
                    .put("rstrip", false).put("normalized", false).put("special", true);
        }
        root.putNull("normalizer");
        root.putObject("pre_tokenizer").put("type", "WhitespaceSplit");
        root.putNull("post_processor");
        root.putNull("decoder");
        ObjectNode vocab = root.putObject("model").put("type", "WordLevel").put("unk_token", "<unk>").putObject("vocab");
        for (int i = 0; i < special.length; i++) {
            vocab.put(special[i], i);
        }
        for (int i = special.length; i < VOCAB; i++) {
            vocab.put("w" + i, i);
        }
        json.writeValue(dir.resolve("tokenizer.json").toFile(), root);
        json.writeValue(dir.resolve("tokenizer_config.json").toFile(),
                Map.of("bos_token", "<s>", "eos_token", "</s>", "pad_token", "<pad>", "add_bos_token", false));
    }

    /** {@code tokens} random words in lines of 100, as {@code {"text": ...}} records. */
    private static Path writeData(Path file, int tokens) throws IOException {
        SplittableRandom random = new SplittableRandom(5);
        try (BufferedWriter w = Files.newBufferedWriter(file, StandardCharsets.UTF_8)) {
            for (int written = 0; written < tokens; written += 100) {
                StringBuilder line = new StringBuilder("{\"text\": \"");
                for (int i = 0; i < 100; i++) {
                    line.append(i == 0 ? "" : " ").append('w').append(4 + random.nextInt(VOCAB - 4));
                }
                w.write(line.append("\"}\n").toString());
            }
        }
        return file;
    }
}
