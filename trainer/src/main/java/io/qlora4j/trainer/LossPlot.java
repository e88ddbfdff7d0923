package io.qlora4j.trainer;

import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.io.UncheckedIOException;
import java.util.List;
import java.util.Optional;
import java.util.function.Consumer;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/** {@code training_loss.png} ({@code plot_loss: true}): the logged loss against the step, drawn headless by JFreeChart. */
final class LossPlot {
    /** The file's name in the output directory. */
    static final String FILE = "training_loss.png";

    private LossPlot() {}

    /**
     * The PNG of the loss of {@code history}, titled after the run; empty, after one line to {@code warn}, where this
     * Java runtime cannot draw: one without {@code java.desktop} (a jlink'd runtime) or a headless machine without
     * fonts ({@code Fontconfig head is null}). The plot is drawn before the run's outputs are published, so that a
     * runtime that cannot draw still gets the trained adapter and its records.
     */
    static Optional<byte[]> draw(String run, List<TrainerState.LogEntry> history, Consumer<String> warn) {
        try {
            return Optional.of(png(run, history));
        } catch (LinkageError | RuntimeException | InternalError e) {
            warn.accept("plot_loss: " + FILE + " not drawn, this Java runtime cannot draw (" + e
                    + "); the adapter and the metrics are written");
            return Optional.empty();
        }
    }

    private static byte[] png(String run, List<TrainerState.LogEntry> history) {
        System.setProperty("java.awt.headless", "true");
        XYSeries loss = new XYSeries("loss");
        for (TrainerState.LogEntry entry : history) {
            loss.add(entry.step(), entry.loss());
        }
        JFreeChart chart = ChartFactory.createXYLineChart("training loss of " + run, "step", "loss",
                new XYSeriesCollection(loss), PlotOrientation.VERTICAL, false, false, false);
        ((NumberAxis) chart.getXYPlot().getRangeAxis()).setAutoRangeIncludesZero(false);
        ByteArrayOutputStream png = new ByteArrayOutputStream();
        try {
            ChartUtils.writeChartAsPNG(png, chart, 800, 500);
        } catch (IOException e) {
            throw new UncheckedIOException(e); // a ByteArrayOutputStream does not fail
        }
        return png.toByteArray();
    }
}
