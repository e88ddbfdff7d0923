package io.qlora4j.adapters;

import java.util.ArrayList;
import java.util.List;
import java.util.Locale;

/**
 * What an adapter initialisation measured while it rewrote the base, summed over the projections it started: for
 * LoftQ the relative weight-reconstruction error {@code ||W - (Q + L R)|| / ||W||} (Frobenius norms over all of them)
 * after each iteration, and that of the starting model {@code Q + scaling * B A}.
 */
public final class InitReport {
    private final List<double[]> iterations = new ArrayList<>();
    private final double[] start = new double[2];
    private int projections;

    InitReport() {}

    /** Adds one projection's {@code ||W - (Q + L R)||^2} and {@code ||W||^2} after iteration {@code i} (0-based). */
    void loftqIteration(int i, double errorSquared, double weightSquared) {
        if (i == iterations.size()) {
            iterations.add(new double[2]);
        }
        iterations.get(i)[0] += errorSquared;
        iterations.get(i)[1] += weightSquared;
    }

    /** Adds one projection's error of the starting model and {@code ||W||^2}. */
    void loftqStart(double errorSquared, double weightSquared) {
        start[0] += errorSquared;
        start[1] += weightSquared;
        projections++;
    }

    /** The relative error after each iteration, first to last. */
    public List<Double> loftqErrors() {
        return iterations.stream().map(e -> Math.sqrt(e[0] / e[1])).toList();
    }

    /** The log lines: one per LoftQ iteration and one for the starting model; none for other initialisations. */
    public List<String> lines() {
        List<String> lines = new ArrayList<>();
        List<Double> errors = loftqErrors();
        for (int i = 0; i < errors.size(); i++) {
            lines.add(String.format(Locale.ROOT, "LoftQ iteration %d: ||W - (Q + L R)|| / ||W|| = %.6f over %d"
                    + " projections", i + 1, errors.get(i), projections));
        }
        if (projections > 0) {
            lines.add(String.format(Locale.ROOT, "LoftQ start: ||W - (Q + scaling B A)|| / ||W|| = %.6f (PEFT does not"
                    + " divide L R by the scaling: set lora_alpha = lora_rank to start at Q + L R)",
                    Math.sqrt(start[0] / start[1])));
        }
        return lines;
    }
}
