package io.qlora4j.trainer;

import io.qlora4j.model.checkpoint.AtomicFiles;
import java.io.ByteArrayOutputStream;
import java.io.IOException;
import java.nio.file.Path;
import java.util.List;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/** {@code training_loss.png} ({@code plot_loss: true}): the logged loss against the step, drawn headless by JFreeChart. */
final class LossPlot {
    /** The file name at the top of output_dir. */
    static final String FILE = "training_loss.png";

    private LossPlot() {}

    /** Draws the loss of {@code history} into {@code dir/training_loss.png}, titled after the run. */
    static void write(Path dir, String run, List<TrainerState.LogEntry> history) throws IOException {
        System.setProperty("java.awt.headless", "true");
        XYSeries loss = new XYSeries("loss");
        for (TrainerState.LogEntry entry : history) {
            loss.add(entry.step(), entry.loss());
        }
        JFreeChart chart = ChartFactory.createXYLineChart("training loss of " + run, "step", "loss",
                new XYSeriesCollection(loss), PlotOrientation.VERTICAL, false, false, false);
        ((NumberAxis) chart.getXYPlot().getRangeAxis()).setAutoRangeIncludesZero(false);
        ByteArrayOutputStream png = new ByteArrayOutputStream();
        ChartUtils.writeChartAsPNG(png, chart, 800, 500);
        AtomicFiles.write(dir.resolve(FILE), png.toByteArray());
    }
}
