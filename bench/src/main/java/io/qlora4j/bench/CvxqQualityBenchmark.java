package io.qlora4j.bench;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.model.Tokenizer;
import io.qlora4j.model.decoder.DecoderBlock;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.generation.Perplexity;
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.HalfFloats;
import io.qlora4j.quant.cvxq.CvxqTensor;
import io.qlora4j.quant.cvxq.PartitionQuantizer;
import io.qlora4j.quant.cvxq.RowClusters;
import io.qlora4j.trainer.cvxq.CalibrationTexts;
import io.qlora4j.trainer.cvxq.CvxqCalibration;
import io.qlora4j.trainer.cvxq.CvxqSettings;
import java.awt.BasicStroke;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import org.jfree.chart.ChartFactory;
import org.jfree.chart.ChartUtils;
import org.jfree.chart.JFreeChart;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * CVXQ against uniform allocation at the same stored size: held-out perplexity of a model whose block projections
 * are CVXQ-quantized to 2, 2.5, 3, 3.5 and 4 bits per parameter, next to round-to-nearest (asymmetric min-max in
 * groups along rows, float16 scale and zero: {@code b + 32/g} bits), the CVXQ quantizer at one depth for every
 * partition (same side information, no allocation), and NF4 with double quantization (4.127 bits). Prints one
 * {@code RESULT} line per point; {@code plot} turns such lines into the markdown table and the PNG curve of
 * docs/BENCHMARKS.md.
 *
 * <pre>
 * measure MODEL CALIBRATION.jsonl HELD_OUT.jsonl [iterations=64] [group_size=128] [length=256]
 * plot RESULTS.txt OUT.png
 * </pre>
 */
public final class CvxqQualityBenchmark {
    private static final double[] TARGETS = {2, 2.5, 3, 3.5, 4};
    private static final int[][] RTN = {{2, 128}, {2, 64}, {2, 32}, {3, 128}, {3, 64}, {3, 32}, {4, 128}, {4, 64}};

    private CvxqQualityBenchmark() {}

    /** {@code measure ...} or {@code plot ...}, as above. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        if (args.length >= 4 && args[0].equals("measure")) {
            measure(Path.of(args[1]), Path.of(args[2]), Path.of(args[3]), arg(args, 4, 64), arg(args, 5, 128),
                    arg(args, 6, 256));
        } else if (args.length == 3 && args[0].equals("plot")) {
            plot(Files.readAllLines(Path.of(args[1])), Path.of(args[2]));
        } else {
            System.err.println("usage: measure MODEL CALIBRATION HELD_OUT [iterations] [group_size] [length]"
                    + " | plot RESULTS OUT.png");
            System.exit(2);
        }
    }

    private static int arg(String[] args, int i, int fallback) {
        return args.length > i ? Integer.parseInt(args[i]) : fallback;
    }

    /** A function from a weight {@code [rows, cols]} to its fake-quantized values, adding its stored bits. */
    private interface FakeQuant {
        float[] apply(float[] w, int rows, int cols, double[] bitsAndParameters);
    }

    private static void measure(Path model, Path calibration, Path heldOut, int iterations, int groupSize,
            int length) throws Exception {
        try (NDManager manager = NDManager.newBaseManager(); Tokenizer tokenizer = Tokenizer.load(model)) {
            List<long[]> calib = CalibrationTexts.read(calibration, tokenizer, CvxqSettings.SEQUENCES, length);
            List<long[]> eval = heldOut(heldOut, tokenizer, length);
            try (CausalLM dense = ModelLoader.builder().build().load(model, manager)) {
                System.out.printf(Locale.ROOT, "RESULT dense bits=32 ppl=%.4f%n", perplexity(dense, eval));
            }
            for (int[] bg : RTN) {
                report("rtn b=" + bg[0] + " g=" + bg[1], model, manager, eval, (w, r, c, acc) -> {
                    acc[0] += (bg[0] + 32.0 / bg[1]) * w.length;
                    acc[1] += w.length;
                    return roundToNearest(w, bg[0], bg[1]);
                });
            }
            BlockwiseQuantizer nf4 = BlockwiseQuantizer.builder().build();
            report("nf4+dq", model, manager, eval, (w, r, c, acc) -> {
                var q = nf4.quantize(w, new long[] {r, c});
                acc[0] += 8.0 * q.bytes();
                acc[1] += w.length;
                return nf4.dequantize(q);
            });
            for (int d = 2; d <= 4; d++) {
                int depth = d;
                report("uniform depth=" + d, model, manager, eval, (w, r, c, acc) -> {
                    RowClusters clusters = RowClusters.consecutive(r, RowClusters.count(r, groupSize));
                    byte[] depths = new byte[clusters.clusters() * c];
                    Arrays.fill(depths, (byte) depth);
                    CvxqTensor t = CvxqTensor.quantize(w, r, c, clusters, depths, PartitionQuantizer.gridSearched());
                    acc[0] += 8.0 * t.bytes() + 16.0 * r; // the float16 bias CVXQ stores, for the same accounting
                    acc[1] += w.length;
                    return t.dequantize();
                });
            }
            for (double target : TARGETS) {
                try (CausalLM m = ModelLoader.builder().build().load(model, manager)) {
                    long start = System.nanoTime();
                    CvxqCalibration.Result r = CvxqCalibration.run(m, calib, CvxqSettings.defaults(target)
                            .withGroupSize(groupSize).withIterations(iterations), line -> { });
                    double seconds = (System.nanoTime() - start) / 1e9;
                    for (CvxqCalibration.Layer l : r.layers()) {
                        String[] parts = l.prefix().split("\\.", 4);
                        CvxqTensor t = l.weight();
                        m.block(Integer.parseInt(parts[2])).setLinear(parts[3], new DenseLinear(
                                manager.create(t.dequantize(), new Shape(t.rows(), t.columns())),
                                manager.create(l.bias())));
                    }
                    System.out.printf(Locale.ROOT, "RESULT cvxq target=%s bits=%.4f ppl=%.4f seconds=%.1f tokens=%d%n",
                            target, r.bitsPerParameter(), perplexity(m, eval), seconds, r.tokens());
                }
            }
        }
    }

    /** The first 60 texts of a {@code .jsonl} file ({@code text}), each cut to {@code length} tokens. */
    private static List<long[]> heldOut(Path file, Tokenizer tokenizer, int length) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<long[]> out = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            long[] ids = tokenizer.encode(json.readTree(line).path("text").asText());
            out.add(ids.length > length ? Arrays.copyOf(ids, length) : ids);
            if (out.size() == 60) {
                break;
            }
        }
        return out;
    }

    private static void report(String name, Path model, NDManager manager, List<long[]> eval, FakeQuant f)
            throws Exception {
        double[] acc = new double[2];
        try (CausalLM m = ModelLoader.builder().build().load(model, manager)) {
            for (int l = 0; l < m.numLayers(); l++) {
                for (String projection : m.block(l).linearNames()) {
                    BaseLinear base = (BaseLinear) m.block(l).linear(projection);
                    int rows = (int) base.outFeatures();
                    int cols = (int) base.inFeatures();
                    float[] w = base.withWeight(DataType.FLOAT32, a -> a.toFloatArray());
                    m.block(l).setLinear(projection, new DenseLinear(manager.create(f.apply(w, rows, cols, acc),
                            new Shape(rows, cols)), null)).close();
                }
            }
            System.out.printf(Locale.ROOT, "RESULT %s bits=%.4f ppl=%.4f%n", name, acc[0] / acc[1],
                    perplexity(m, eval));
        }
    }

    private static double perplexity(CausalLM model, List<long[]> eval) {
        Perplexity p = Perplexity.NONE;
        for (long[] ids : eval) {
            p = p.plus(Perplexity.of(model, ids));
        }
        return p.perplexity();
    }

    /** Asymmetric min-max round-to-nearest in groups of {@code g} consecutive row elements, float16 scale and zero. */
    static float[] roundToNearest(float[] w, int bits, int g) {
        float[] out = new float[w.length];
        int top = (1 << bits) - 1;
        for (int s = 0; s < w.length; s += g) {
            int end = Math.min(w.length, s + g);
            float lo = Float.MAX_VALUE;
            float hi = -Float.MAX_VALUE;
            for (int i = s; i < end; i++) {
                lo = Math.min(lo, w[i]);
                hi = Math.max(hi, w[i]);
            }
            float scale = HalfFloats.f16ToFloat(HalfFloats.floatToF16((hi - lo) / top));
            float zero = scale == 0 ? 0 : Math.round(-lo / scale);
            for (int i = s; i < end; i++) {
                out[i] = scale == 0 ? lo : (Math.max(0, Math.min(top, Math.round(w[i] / scale) + zero)) - zero) * scale;
            }
        }
        return out;
    }

    /** The markdown table and the curve of the {@code RESULT} lines in {@code lines}. */
    static void plot(List<String> lines, Path png) throws IOException {
        System.setProperty("java.awt.headless", "true");
        Map<String, XYSeries> series = new LinkedHashMap<>();
        List<String> table = new ArrayList<>();
        table.add("| method | bits/param | perplexity |");
        table.add("|---|---|---|");
        for (String line : lines) {
            if (!line.startsWith("RESULT ")) {
                continue;
            }
            Map<String, String> kv = new LinkedHashMap<>();
            String method = line.substring(7).split(" ")[0];
            for (String part : line.substring(7).split(" ")) {
                String[] p = part.split("=", 2);
                if (p.length == 2) {
                    kv.put(p[0], p[1]);
                }
            }
            String label = line.substring(7, line.indexOf(" bits="));
            table.add("| " + label + " | " + kv.get("bits") + " | " + kv.get("ppl") + " |");
            if (method.equals("dense")) {
                continue;
            }
            String curve = switch (method) {
                case "cvxq" -> "CVXQ (allocated depths)";
                case "rtn" -> "round-to-nearest, " + kv.get("g").replace("g", "") + "-element groups";
                case "uniform" -> "CVXQ quantizer, one depth for all";
                default -> "NF4+DQ";
            };
            series.computeIfAbsent(curve, XYSeries::new).add(Double.parseDouble(kv.get("bits")),
                    Double.parseDouble(kv.get("ppl")));
        }
        XYSeriesCollection data = new XYSeriesCollection();
        series.values().forEach(data::addSeries);
        JFreeChart chart = ChartFactory.createXYLineChart("held-out perplexity against stored bits per parameter",
                "bits per parameter (side information included)", "perplexity", data, PlotOrientation.VERTICAL, true,
                false, false);
        XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, true);
        for (int i = 0; i < data.getSeriesCount(); i++) {
            renderer.setSeriesStroke(i, new BasicStroke(2f));
        }
        chart.getXYPlot().setRenderer(renderer);
        ((NumberAxis) chart.getXYPlot().getRangeAxis()).setAutoRangeIncludesZero(false);
        ((NumberAxis) chart.getXYPlot().getDomainAxis()).setAutoRangeIncludesZero(false);
        ChartUtils.saveChartAsPNG(png.toFile(), chart, 900, 560);
        table.forEach(System.out::println);
    }
}
