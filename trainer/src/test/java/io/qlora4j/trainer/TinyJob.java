package io.qlora4j.trainer;

import io.qlora4j.model.ModelException;
import java.io.IOException;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;

/**
 * A QLoRA job on the tiny model, for tests that run {@code qlora4j train} as a process would: a base checkpoint, a copy
 * task dataset and an output folder under one directory.
 *
 * @param base the tiny model's checkpoint folder
 * @param data the dataset file
 * @param out the output folder (not created)
 */
public record TinyJob(Path base, Path data, Path out) {
    /** Writes the base (seeded with {@code seed}) and four copy examples of length 2 under {@code dir}. */
    public static TinyJob write(Path dir, long seed) throws IOException, ModelException {
        return new TinyJob(TinyModel.write(dir.resolve("base"), seed),
                TinyTasks.write(dir.resolve("copy.json"), "copy", 4, 2), dir.resolve("out"));
    }

    /** The command line {@code train} over NF4, two steps, then {@code extra} settings. */
    public String[] train(String... extra) {
        List<String> args = new ArrayList<>(List.of("train", "model_name_or_path=" + base, "dataset=" + data,
                "output_dir=" + out, "quantization_bit=4", "max_steps=2"));
        args.addAll(List.of(extra));
        return args.toArray(String[]::new);
    }
}
