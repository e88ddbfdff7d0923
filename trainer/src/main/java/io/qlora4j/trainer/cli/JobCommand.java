package io.qlora4j.trainer.cli;

import io.qlora4j.trainer.config.JobConfig;
import java.io.PrintWriter;
import java.util.concurrent.Callable;
import picocli.CommandLine.Mixin;
import picocli.CommandLine.Model.CommandSpec;
import picocli.CommandLine.Spec;

/** A subcommand driven by a job: {@code [JOB.yaml] [key=value...]} parsed into a validated {@link JobConfig}. */
abstract class JobCommand implements Callable<Integer> {
    @Mixin
    JobArguments job;

    @Spec
    CommandSpec spec;

    @Override
    public final Integer call() throws Exception {
        return run(job.load());
    }

    /** Runs the job and returns the exit status. */
    abstract int run(JobConfig config) throws Exception;

    PrintWriter out() {
        return spec.commandLine().getOut();
    }

    PrintWriter err() {
        return spec.commandLine().getErr();
    }
}
