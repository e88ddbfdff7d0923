package io.qlora4j.trainer.cli;

import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import picocli.CommandLine.Parameters;

/** The arguments every job command takes: an optional YAML file, then {@code key=value} overrides. */
final class JobArguments {
    @Parameters(paramLabel = "[JOB.yaml] [key=value...]", description = "A job file and/or settings; settings after the file override it.")
    List<String> args = new ArrayList<>();

    JobConfig load() throws ConfigException {
        Path yaml = null;
        List<String> overrides = new ArrayList<>();
        for (int i = 0; i < args.size(); i++) {
            String a = args.get(i);
            if (i == 0 && !a.contains("=")) {
                yaml = Path.of(a);
            } else {
                overrides.add(a);
            }
        }
        return JobConfig.load(yaml, overrides);
    }
}
