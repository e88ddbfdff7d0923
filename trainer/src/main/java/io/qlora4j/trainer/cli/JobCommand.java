package io.qlora4j.trainer.cli;

import io.qlora4j.data.DataLog;
import io.qlora4j.model.LibtorchVersion;
import io.qlora4j.trainer.config.JobConfig;
import java.io.PrintWriter;
import java.util.List;
import java.util.concurrent.Callable;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/**
 * A subcommand driven by a job: {@code [JOB.yaml] [key=value...]} parsed into a validated {@link JobConfig}; the
 * keys it sets that change nothing in a qlora4j run are named once in a warning on stderr before it runs. A command
 * that takes a subset of the keys (a model's, not a training run's) names after a successful run those the job set and
 * it never read, as LLaMA-Factory's chat and export refuse keys outside their argument classes. A libtorch that DJL's
 * JNI cannot drive is refused first ({@link LibtorchVersion}).
 */
abstract class JobCommand implements Callable<Integer> {
    @Mixin
    JobArguments job;

    @Spec
    CommandSpec spec;

    @Override
    public final Integer call() throws Exception {
        LibtorchVersion.requireSupported(System.getenv("PYTORCH_LIBRARY_PATH"));
        JobConfig config = job.load();
        List<String> inert = config.inertKeys();
        if (!inert.isEmpty()) {
            err().println("warning: accepted without effect in a single-process qlora4j run (README.md, Job keys): "
                    + String.join(", ", inert));
        }
        int status = run(config);
        List<String> unread = namesUnreadKeys() && status == 0 ? config.unreadKeys() : List.of();
        if (!unread.isEmpty()) {
            err().println("warning: set but not used by qlora4j " + spec.name() + ": " + String.join(", ", unread));
        }
        return status;
    }

    /** Runs the job and returns the exit status. */
    abstract int run(JobConfig config) throws Exception;

    /**
     * Whether the command takes only some of a training job's keys, so that a key the job sets and the run never
     * read is named in a warning; false for the commands that take a whole training job (train, data, inspect).
     */
    boolean namesUnreadKeys() {
        return false;
    }

    PrintWriter out() {
        return spec.commandLine().getOut();
    }

    PrintWriter err() {
        return spec.commandLine().getErr();
    }

    /** What the data pipeline reports: to stdout, the first skipped records too with {@code --debug}. */
    DataLog dataLog() {
        return DataLog.to(out(), Main.debug());
    }
}
