package io.qlora4j.data;

import java.io.PrintWriter;
import java.util.function.Consumer;

/**
 * Where the data pipeline says what it chose and what it skipped: {@code info} lines a user always sees (the
 * template chosen when the job names none, each dataset's kept/skipped counts by reason), {@code detail} lines
 * for a closer look (the first skipped records of each dataset with file, line and reason).
 *
 * @param info receives the lines shown on every run
 * @param detail receives the lines shown when asked for ({@code --debug})
 */
public record DataLog(Consumer<String> info, Consumer<String> detail) {

    /** Says nothing. */
    public static final DataLog SILENT = new DataLog(line -> { }, line -> { });

    /** Info lines to {@code out}; detail lines too when {@code details}. */
    public static DataLog to(PrintWriter out, boolean details) {
        return new DataLog(out::println, details ? out::println : line -> { });
    }
}
