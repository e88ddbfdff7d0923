package io.qlora4j.trainer;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.dataformat.yaml.YAMLFactory;
import io.qlora4j.trainer.config.JobConfig;

/**
 * {@code training_args.yaml}: the job as it ran, every key with the value in effect (given or default),
 * in the job-file format, so {@code qlora4j train training_args.yaml} repeats it.
 */
final class TrainingArgs {
    /** The file name inside a checkpoint and at the top of output_dir. */
    static final String FILE = "training_args.yaml";

    private TrainingArgs() {}

    /** The resolved job as YAML text. */
    static String yaml(JobConfig config) throws JsonProcessingException {
        return new ObjectMapper(new YAMLFactory()).writeValueAsString(config.resolvedValues());
    }
}
