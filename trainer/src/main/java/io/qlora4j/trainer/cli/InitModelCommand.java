package io.qlora4j.trainer.cli;

import io.qlora4j.trainer.RandomModel;
import io.qlora4j.trainer.config.ConfigException;
import java.nio.file.Path;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.Parameters;

/**
 * {@code qlora4j init-model}: a randomly initialized model directory to pre-train from, what LLaMA-Factory's
 * {@code train_from_scratch} does in memory (README's key table points there).
 */
@Command(name = "init-model", description = {
    "Write a randomly initialized model (float32 weights) for a config.json, to train from scratch.",
    "SOURCE_DIR holds config.json and the tokenizer files, which go to OUT_DIR with the weights; pre-train the",
    "result with finetuning_type=full (see examples/regenerate-demo-base.sh)."})
final class InitModelCommand implements Callable<Integer> {
    @Parameters(index = "0", paramLabel = "SOURCE_DIR", description = "Folder with config.json and tokenizer files.")
    Path source;

    @Parameters(index = "1", paramLabel = "OUT_DIR", description = "Where the model directory is written.")
    Path out;

    @Option(names = "--seed", defaultValue = "42", description = "Seed of the weights (default ${DEFAULT-VALUE}).")
    long seed;

    @Option(names = "--std", defaultValue = "0.02", description = "Standard deviation (default ${DEFAULT-VALUE}).")
    double std;

    /** Refuses a {@code --std} torch's {@code normal_} refuses too (negative) or that draws no numbers (NaN, infinite). */
    @Override
    public Integer call() throws Exception {
        if (!(std >= 0) || Double.isInfinite(std)) {
            throw new ConfigException("--std: " + std + " is out of range (allowed: a finite number >= 0)");
        }
        RandomModel.write(source, out, seed, std);
        return 0;
    }
}
