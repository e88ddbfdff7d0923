package io.qlora4j.trainer;

import java.io.PrintWriter;
import java.util.List;
import java.util.Locale;

/**
 * A model's score on a held-out set ({@link HeldOutEval}).
 *
 * @param examples how many records were scored
 * @param loss cross-entropy of the answer tokens as transformers' {@code eval_loss} averages it: each batch's mean
 *     over its tokens, averaged over the examples
 * @param exactMatch the fraction of greedy answers equal to the expected ones, null without generation
 * @param predictions one per record, in file order (empty without generation)
 */
public record EvalReport(int examples, double loss, Double exactMatch, List<Prediction> predictions) {
    /** How many example generations {@link #printComparison} shows. */
    static final int SHOWN = 3;

    /**
     * One record's greedy answer.
     *
     * @param prompt the prompt text as the template renders it
     * @param expected the record's answer text
     * @param generated the model's answer text (up to the stop token)
     * @param exact whether the two are equal
     */
    public record Prediction(String prompt, String expected, String generated, boolean exact) {}

    /**
     * Prints {@code before} and {@code after} side by side on {@code dataset} (rows named {@code beforeName} and
     * {@code afterName}): exact match and loss, then the first {@value #SHOWN} generations of each.
     */
    public static void printComparison(PrintWriter out, String dataset, String beforeName, EvalReport before,
            String afterName, EvalReport after) {
        int width = Math.max(beforeName.length(), afterName.length());
        out.printf(Locale.ROOT, "held-out evaluation on %s (%d examples)%n", dataset, after.examples());
        out.printf(Locale.ROOT, "  %-" + width + "s  %11s  %8s%n", "model", "exact match", "loss");
        for (int i = 0; i < 2; i++) {
            EvalReport r = i == 0 ? before : after;
            out.printf(Locale.ROOT, "  %-" + width + "s  %11s  %8.4f%n", i == 0 ? beforeName : afterName,
                    r.exactMatch() == null ? "-" : String.format(Locale.ROOT, "%.1f%%", 100 * r.exactMatch()), r.loss());
        }
        for (int i = 0; i < Math.min(SHOWN, after.predictions().size()); i++) {
            Prediction b = before.predictions().get(i);
            Prediction a = after.predictions().get(i);
            out.printf(Locale.ROOT, "  example %d: prompt %s%n", i + 1, quoted(a.prompt()));
            out.printf(Locale.ROOT, "    %-" + width + "s %s%n", "expected", quoted(a.expected()));
            out.printf(Locale.ROOT, "    %-" + width + "s %s%s%n", beforeName, quoted(b.generated()), b.exact() ? "  (exact)" : "");
            out.printf(Locale.ROOT, "    %-" + width + "s %s%s%n", afterName, quoted(a.generated()), a.exact() ? "  (exact)" : "");
        }
        out.flush();
    }

    /** The text in double quotes with newlines, tabs, quotes and backslashes escaped, so it stays on one line. */
    static String quoted(String text) {
        return '"' + text.replace("\\", "\\\\").replace("\"", "\\\"").replace("\n", "\\n").replace("\t", "\\t") + '"';
    }
}
