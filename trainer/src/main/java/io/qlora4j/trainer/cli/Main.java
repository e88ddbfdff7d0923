package io.qlora4j.trainer.cli;

import io.qlora4j.data.DataException;
import io.qlora4j.model.ModelException;
import io.qlora4j.trainer.config.ConfigException;
import java.io.IOException;
import java.io.PrintWriter;
import java.io.UncheckedIOException;
import java.util.List;
import picocli.CommandLine;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;
import picocli.CommandLine.ScopeType;

/** The {@code qlora4j} command line: one subcommand class per job kind. */
@Command(
        name = "qlora4j",
        mixinStandardHelpOptions = true,
        scope = ScopeType.INHERIT,
        version = "qlora4j 0.1.0",
        description = "QLoRA fine-tuning on the JVM. Jobs take a YAML file and/or key=value settings.",
        subcommands = {QuantizeCommand.class, InspectCommand.class, EvalCommand.class, GenerateCommand.class,
            DataCommand.class, TrainCommand.class, ExportCommand.class, InitModelCommand.class})
public final class Main {
    private static boolean debug;

    @Option(names = "--debug", scope = ScopeType.INHERIT,
            description = "Show stack traces for errors and the first skipped records of each dataset.")
    void setDebug(boolean value) {
        debug = value;
    }

    /** Whether {@code --debug} was given. */
    static boolean debug() {
        return debug;
    }

    /** Runs the command line and exits with its status. */
    public static void main(String[] args) {
        System.exit(run(new PrintWriter(System.out, true), new PrintWriter(System.err, true), args));
    }

    /**
     * Runs the command line with the given streams and returns the exit status: 0 on success, 1
     * for bad input (one line on {@code err}), 2 for a usage error.
     */
    public static int run(PrintWriter out, PrintWriter err, String... args) {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        debug = false;
        CommandLine cli = new CommandLine(new Main());
        cli.setOut(out).setErr(err);
        cli.setParameterExceptionHandler((e, given) -> usageError(err, e, given));
        cli.setExecutionExceptionHandler((e, commandLine, parseResult) -> {
            Throwable cause = e instanceof UncheckedIOException u ? u.getCause() : e;
            String prefix = "qlora4j " + commandLine.getCommandName() + ": ";
            if (cause instanceof ConfigException || cause instanceof ModelException || cause instanceof DataException) {
                return report(err, prefix + oneLine(cause.getMessage()), cause);
            } else if (cause instanceof IOException) {
                return report(err, prefix + "I/O error: " + oneLine(cause.getMessage()), cause);
            }
            return report(err, prefix + "internal error: " + oneLine(cause.toString()) + debugHint(), cause);
        });
        try {
            return cli.execute(args);
        } catch (OutOfMemoryError e) {
            // picocli hands a command's Errors on: the JVM's limits (its heap, its direct buffers) get one line too
            return report(err, "qlora4j: out of Java memory (" + oneLine(e.getMessage()) + "): give the JVM more with"
                    + " JAVA_OPTS=-Xmx<size> (the heap) or -XX:MaxDirectMemorySize=<size> (direct buffers, where a"
                    + " model on the CPU keeps its weights; the launcher allows the machine's memory)" + debugHint(), e);
        } catch (LinkageError e) {
            return report(err, "qlora4j: a library failed to load (" + oneLine(e.toString()) + ")" + debugHint(), e);
        }
    }

    /**
     * A command line picocli cannot parse (an unknown command or option, a value of the wrong type, an argument too
     * many) gets one line naming it, picocli's suggestion where it has one, and where the usage is; status 2. With no
     * arguments at all the usage is the answer, and is printed.
     */
    private static int usageError(PrintWriter err, CommandLine.ParameterException e, String[] given) {
        CommandLine command = e.getCommandLine();
        if (given.length == 0) {
            command.usage(err);
            return 2;
        }
        String name = command.getCommandSpec().qualifiedName();
        List<String> suggestions = e instanceof CommandLine.UnmatchedArgumentException u ? u.getSuggestions() : List.of();
        err.println(name + ": " + oneLine(e.getMessage())
                + (suggestions.isEmpty() ? "" : "; did you mean " + String.join(" or ", suggestions) + "?")
                + " (" + name + " --help shows the usage)");
        err.flush();
        return 2;
    }

    /** Reports what ended a command: {@code line}, {@code cause}'s stack trace only with {@code --debug}; status 1. */
    private static int report(PrintWriter err, String line, Throwable cause) {
        err.println(line);
        if (debug) {
            cause.printStackTrace(err);
        }
        err.flush();
        return 1;
    }

    /** What an unexpected failure's line ends with unless {@code --debug} shows its stack trace. */
    private static String debugHint() {
        return debug ? "" : " (run with --debug for details)";
    }

    /**
     * A message that quotes another's (a native library's, a parser's) on one line, as every error is printed, without
     * the source descriptions Jackson nests in its messages ({@code [Source: REDACTED (...); line: 1, column: 1]}).
     */
    private static String oneLine(String message) {
        return message == null ? "" : message.strip().replaceAll("\\s*\\R\\s*", " ")
                .replaceAll("\\[Source: [^;]*; ", "[");
    }
}
