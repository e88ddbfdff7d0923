package io.qlora4j.bench;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import ai.djl.ndarray.types.Shape;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.model.BaseLinear;
import io.qlora4j.model.DenseLinear;
import io.qlora4j.model.Tokenizer;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.generation.Perplexity;
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.HalfFloats;
import io.qlora4j.quant.cvxq.CvxqTensor;
import io.qlora4j.quant.cvxq.PartitionQuantizer;
import io.qlora4j.quant.cvxq.RowClusters;
import io.qlora4j.trainer.cvxq.CalibrationTexts;
import io.qlora4j.trainer.cvxq.CvxqCalibration;
import io.qlora4j.trainer.cvxq.CvxqSettings;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.FormatKeys;
import io.qlora4j.trainer.cli.Main;
import java.awt.BasicStroke;
import java.awt.Color;
import java.io.PrintWriter;
import java.text.DecimalFormat;
import java.io.StringWriter;
import java.util.Comparator;
import java.util.Set;
import java.util.regex.Matcher;
import java.util.regex.Pattern;
import java.util.stream.Collectors;
import java.util.stream.Stream;
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
import org.jfree.chart.axis.LogAxis;
import org.jfree.chart.axis.NumberAxis;
import org.jfree.chart.plot.ValueMarker;
import org.jfree.chart.plot.XYPlot;
import org.jfree.chart.ui.RectangleAnchor;
import org.jfree.chart.ui.TextAnchor;
import org.jfree.chart.plot.PlotOrientation;
import org.jfree.chart.renderer.xy.XYLineAndShapeRenderer;
import org.jfree.data.xy.XYSeries;
import org.jfree.data.xy.XYSeriesCollection;

/**
 * Held-out perplexity against stored bits per parameter: one entry point for the quality tables of
 * docs/BENCHMARKS.md. Each mode prints one {@code RESULT} line per point (the family, a label, {@code bits=} stored
 * bits per block-projection parameter with all side information, {@code ppl=}, and what else it measured);
 * {@code plot} turns such lines into the markdown table and a PNG curve.
 *
 * <ul>
 *   <li>{@code formats}: the float model and every base format a job quantizes to on the fly
 *       ({@link BaseFormats#menu()}, so a newly registered format joins the table by itself) plus NF4 without double
 *       quantization and FP4, each loaded through the loader as a job loads it.</li>
 *   <li>{@code aqlm}: AQLM schemes ({@code 2x8g8}: 2 codebooks of 8 bits, groups of 8 inputs) made by
 *       {@code qlora4j quantize quantization_method=aqlm} from calibration text (timed), then loaded as stored.</li>
 *   <li>{@code cvxq}: CVXQ at chosen targets against uniform allocation at the same size: round-to-nearest
 *       (asymmetric min-max in groups along rows, float16 scale and zero: {@code b + 32/g} bits), the CVXQ quantizer
 *       at one depth for every partition (same side information, no allocation), NF4 with double quantization;
 *       each line adds {@code kl=}, the mean per-token KL divergence of the quantized model's next-token distribution
 *       from the float model's on the held-out text (the damage itself, where perplexity also moves with how well the
 *       float model fits that text), and CVXQ's lines the share of parameters at each bit depth
 *       ({@code depths=0:5.1/1:20.3/...}, percent).</li>
 * </ul>
 *
 * <pre>
 * formats MODEL HELD_OUT.jsonl [length=256]
 * aqlm MODEL CALIBRATION.jsonl HELD_OUT.jsonl SCHEME[,SCHEME...] [length=256] [key=value ...]
 * cvxq MODEL CALIBRATION.jsonl HELD_OUT.jsonl [iterations=64] [group_size=128] [length=256] [targets=2,2.5,3,3.5,4]
 * plot RESULTS.txt OUT.png [TITLE] [kl]
 * </pre>
 * {@code plot ... kl} draws the {@code kl=} figures (log axis) instead of perplexity, over the lines that have one.
 * The held-out text is the first {@value #HELD_OUT_TEXTS} texts of the file, each cut to {@code length} tokens.
 */
public final class QualityBenchmark {
    private static final int HELD_OUT_TEXTS = 60;
    private static final String TARGETS = "2,2.5,3,3.5,4";
    private static final int[][] RTN = {{2, 128}, {2, 64}, {2, 32}, {3, 128}, {3, 64}, {3, 32}, {4, 128}, {4, 64}};
    private static final Pattern SCHEME = Pattern.compile("(\\d+)x(\\d+)(?:g(\\d+))?");
    private static final Pattern AQLM_DONE = Pattern.compile(
            "quantized .* in ([\\d.]+) s: ([\\d.]+) bits per quantized parameter, mean relative error ([\\d.]+)");
    /** Series drawn as points only (variants of one bit width, not a curve). */
    private static final Set<String> POINTS = Set.of("NF4", "NF4+DQ", "FP4", "FP4+DQ", "bitsandbytes LLM.int8",
            "EETQ int8");
    /** Families whose label keeps the family name (it is the method's name; formats' labels name it themselves). */
    private static final Set<String> CURVES = Set.of("cvxq", "rtn", "uniform", "aqlm");
    /** The largest perplexity over the float model's that a plot still shows on a linear axis. */
    private static final double EXCESS_SPAN = 1.5;
    /** The smallest perplexity excess a logarithmic plot shows. */
    private static final double EXCESS_FLOOR = 1e-4;

    private QualityBenchmark() {}

    /** One of the modes above. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        String mode = args.length == 0 ? "" : args[0];
        if (mode.equals("formats") && args.length >= 3) {
            formats(Path.of(args[1]), Path.of(args[2]), arg(args, 3, 256));
        } else if (mode.equals("aqlm") && args.length >= 5) {
            aqlm(Path.of(args[1]), Path.of(args[2]), Path.of(args[3]), args[4].split(","), arg(args, 5, 256),
                    Arrays.asList(args).subList(Math.min(args.length, 6), args.length));
        } else if (mode.equals("cvxq") && args.length >= 4) {
            cvxq(Path.of(args[1]), Path.of(args[2]), Path.of(args[3]), arg(args, 4, 64), arg(args, 5, 128),
                    arg(args, 6, 256), (args.length > 7 ? args[7] : TARGETS).split(","));
        } else if (mode.equals("plot") && args.length >= 3 && args.length <= 5) {
            plot(Files.readAllLines(Path.of(args[1])), Path.of(args[2]),
                    args.length >= 4 ? args[3] : "held-out perplexity against stored bits per parameter",
                    args.length == 5 && args[4].equals("kl"));
        } else {
            System.err.println("usage: formats MODEL HELD_OUT [length]"
                    + " | aqlm MODEL CALIBRATION HELD_OUT SCHEME[,SCHEME...] [length] [key=value ...]"
                    + " | cvxq MODEL CALIBRATION HELD_OUT [iterations] [group_size] [length] [targets]"
                    + " | plot RESULTS OUT.png [TITLE] [kl]");
            System.exit(2);
        }
    }

    private static int arg(String[] args, int i, int fallback) {
        return args.length > i ? Integer.parseInt(args[i]) : fallback;
    }

    /** The formats of {@code formats}: float32, NF4 and FP4 with and without double quantization, then the menu. */
    private static List<BaseFormat> formatList() throws ModelException {
        Map<String, BaseFormat> out = new LinkedHashMap<>();
        out.put(BaseFormats.DENSE.describe(), BaseFormats.DENSE);
        List<BaseFormat> all = new ArrayList<>();
        for (String type : List.of("nf4", "fp4")) {
            for (boolean dq : new boolean[] {false, true}) {
                all.add(BaseFormats.fromKeys(new FormatKeys("bnb", 4,
                        Map.of("quantization_type", type, "double_quantization", dq))));
            }
        }
        all.addAll(BaseFormats.menu());
        all.forEach(f -> out.putIfAbsent(f.describe(), f));
        return List.copyOf(out.values());
    }

    private static void formats(Path model, Path heldOut, int length) throws Exception {
        System.out.println(Machine.describe());
        try (Tokenizer tokenizer = Tokenizer.load(model)) {
            List<long[]> eval = heldOut(heldOut, tokenizer, length);
            for (BaseFormat format : formatList()) {
                long start = System.nanoTime();
                try (NDManager manager = NDManager.newBaseManager();
                        CausalLM m = ModelLoader.builder().optFormat(format).build().load(model, manager)) {
                    double seconds = (System.nanoTime() - start) / 1e9;
                    System.out.printf(Locale.ROOT, "RESULT %s %s bits=%.4f ppl=%.4f load_seconds=%.1f%n",
                            family(format), format.describe(), storedBits(m, format),
                            perplexity(m, eval), seconds);
                }
            }
        }
    }

    /** The plot family of a format: its method, with bitsandbytes split into its code books and 8-bit. */
    private static String family(BaseFormat format) {
        String d = format.describe();
        if (format == BaseFormats.DENSE) {
            return "dense";
        } else if (format.method().equals("bnb") && format.bits() == 4) {
            return d.substring("bitsandbytes ".length(), d.indexOf(',')).toLowerCase(Locale.ROOT);
        }
        return format.method().equals("bnb") ? "bnb8" : format.method();
    }

    /** Stored bits per block-projection parameter of {@code format} over {@code m}'s projections. */
    private static double storedBits(CausalLM m, BaseFormat format) {
        double bits = 0;
        double params = 0;
        for (int l = 0; l < m.numLayers(); l++) {
            for (String projection : m.block(l).linearNames()) {
                BaseLinear base = (BaseLinear) m.block(l).linear(projection);
                long[] shape = {base.outFeatures(), base.inFeatures()};
                bits += 8.0 * format.storedBytes(shape);
                params += shape[0] * shape[1];
            }
        }
        return bits / params;
    }

    private static void aqlm(Path model, Path calibration, Path heldOut, String[] schemes, int length,
            List<String> extra) throws Exception {
        System.out.println(Machine.describe());
        Path work = Files.createTempDirectory("qlora4j-aqlm-quality");
        try (Tokenizer tokenizer = Tokenizer.load(model)) {
            List<long[]> eval = heldOut(heldOut, tokenizer, length);
            for (String scheme : schemes) {
                Matcher s = SCHEME.matcher(scheme);
                if (!s.matches()) {
                    throw new IllegalArgumentException("AQLM scheme '" + scheme + "': expected KxN or KxNgG");
                }
                Path out = work.resolve(scheme);
                List<String> args = new ArrayList<>(List.of("quantize", "model_name_or_path=" + model,
                        "quantization_method=aqlm", "num_codebooks=" + s.group(1), "nbits_per_codebook=" + s.group(2),
                        "in_group_size=" + (s.group(3) == null ? "8" : s.group(3)), "dataset=" + calibration,
                        "cutoff_len=" + length, "export_dir=" + out, "seed=0"));
                args.addAll(extra);
                StringWriter log = new StringWriter();
                long start = System.nanoTime();
                int status = Main.run(new PrintWriter(log, true), new PrintWriter(System.err, true),
                        args.toArray(String[]::new));
                double seconds = (System.nanoTime() - start) / 1e9;
                Matcher done = AQLM_DONE.matcher(log.toString());
                if (status != 0 || !done.find()) {
                    System.out.println("AQLM " + scheme + " failed (exit " + status + "):\n" + log);
                    continue;
                }
                BaseFormat stored = BaseFormats.stored(out);
                try (NDManager manager = NDManager.newBaseManager();
                        CausalLM m = ModelLoader.builder().build().load(out, manager)) {
                    System.out.printf(Locale.ROOT, "RESULT aqlm %s bits=%.4f ppl=%.4f code_bits=%.4f seconds=%.1f"
                            + " relative_error=%s%n", scheme, storedBits(m, stored), perplexity(m, eval),
                            Double.parseDouble(s.group(1)) * Double.parseDouble(s.group(2))
                                    / (s.group(3) == null ? 8 : Double.parseDouble(s.group(3))),
                            seconds, done.group(3));
                }
            }
        } finally {
            try (Stream<Path> walk = Files.walk(work)) {
                for (Path p : walk.sorted(Comparator.reverseOrder()).toList()) {
                    Files.deleteIfExists(p);
                }
            }
        }
    }

    /** A function from a weight {@code [rows, cols]} to its fake-quantized values, adding its stored bits. */
    private interface FakeQuant {
        float[] apply(float[] w, int rows, int cols, double[] bitsAndParameters);
    }

    private static void cvxq(Path model, Path calibration, Path heldOut, int iterations, int groupSize,
            int length, String[] targets) throws Exception {
        System.out.println(Machine.describe());
        try (NDManager manager = NDManager.newBaseManager(); Tokenizer tokenizer = Tokenizer.load(model)) {
            List<long[]> calib = CalibrationTexts.read(calibration, tokenizer, CvxqSettings.SEQUENCES, length);
            List<long[]> eval = heldOut(heldOut, tokenizer, length);
            Divergence reference;
            try (CausalLM dense = ModelLoader.builder().build().load(model, manager)) {
                reference = new Divergence(dense, eval);
                System.out.printf(Locale.ROOT, "RESULT dense bits=32 ppl=%.4f%n", perplexity(dense, eval));
            }
            for (int[] bg : RTN) {
                report("rtn b=" + bg[0] + " g=" + bg[1], model, manager, reference, (w, r, c, acc) -> {
                    acc[0] += (bg[0] + 32.0 / bg[1]) * w.length;
                    acc[1] += w.length;
                    return roundToNearest(w, bg[0], bg[1]);
                });
            }
            BlockwiseQuantizer nf4 = BlockwiseQuantizer.builder().build();
            report("nf4+dq", model, manager, reference, (w, r, c, acc) -> {
                var q = nf4.quantize(w, new long[] {r, c});
                acc[0] += 8.0 * q.bytes();
                acc[1] += w.length;
                return nf4.dequantize(q);
            });
            for (int d = 2; d <= 4; d++) {
                int depth = d;
                report("uniform depth=" + d, model, manager, reference, (w, r, c, acc) -> {
                    RowClusters clusters = RowClusters.consecutive(r, RowClusters.count(r, groupSize));
                    byte[] depths = new byte[clusters.clusters() * c];
                    Arrays.fill(depths, (byte) depth);
                    CvxqTensor t = CvxqTensor.quantize(w, r, c, clusters, depths, PartitionQuantizer.gridSearched());
                    acc[0] += 8.0 * t.bytes() + 16.0 * r; // the float16 bias CVXQ stores, for the same accounting
                    acc[1] += w.length;
                    return t.dequantize();
                });
            }
            for (String value : targets) {
                double target = Double.parseDouble(value);
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
                    System.out.printf(Locale.ROOT, "RESULT cvxq target=%s bits=%.4f ppl=%.4f kl=%.5f seconds=%.1f"
                            + " tokens=%d depths=%s%n", target, r.bitsPerParameter(), perplexity(m, eval),
                            reference.of(m), seconds, r.tokens(), depthShares(r));
                }
            }
        }
    }

    /** The share of projection parameters at each bit depth 0..8, as {@code 0:12.5/1:...} (percent). */
    private static String depthShares(CvxqCalibration.Result r) {
        double[] at = new double[9];
        double all = 0;
        for (CvxqCalibration.Layer l : r.layers()) {
            CvxqTensor t = l.weight();
            int[] sizes = new int[t.clusters().clusters()];
            for (int c : t.clusters().clusterOfRow()) {
                sizes[c]++;
            }
            for (int p = 0; p < t.depths().length; p++) {
                at[t.depths()[p]] += sizes[p / t.columns()];
            }
            all += (double) t.rows() * t.columns();
        }
        StringBuilder b = new StringBuilder();
        for (int d = 0; d < at.length; d++) {
            if (at[d] > 0) {
                b.append(b.length() == 0 ? "" : "/").append(d).append(':')
                        .append(String.format(Locale.ROOT, "%.1f", 100 * at[d] / all));
            }
        }
        return b.toString();
    }

    /** The first {@value #HELD_OUT_TEXTS} texts of a {@code .jsonl} file ({@code text}), each cut to {@code length} tokens. */
    private static List<long[]> heldOut(Path file, Tokenizer tokenizer, int length) throws IOException {
        ObjectMapper json = new ObjectMapper();
        List<long[]> out = new ArrayList<>();
        for (String line : Files.readAllLines(file)) {
            long[] ids = tokenizer.encode(json.readTree(line).path("text").asText());
            out.add(ids.length > length ? Arrays.copyOf(ids, length) : ids);
            if (out.size() == HELD_OUT_TEXTS) {
                break;
            }
        }
        return out;
    }

    private static void report(String name, Path model, NDManager manager, Divergence reference, FakeQuant f)
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
            System.out.printf(Locale.ROOT, "RESULT %s bits=%.4f ppl=%.4f kl=%.5f%n", name, acc[0] / acc[1],
                    perplexity(m, reference.eval), reference.of(m));
        }
    }

    /**
     * How far a quantized model's next-token distributions lie from the float model's on the held-out text: the mean
     * over predicted positions of {@code KL(p_float || p_quantized)} in nats. It measures the damage quantization
     * does to the model itself (what CVXQ minimizes), where held-out perplexity also moves with how well the float
     * model happens to fit that text: on an undertrained model small perturbations move perplexity either way.
     */
    private static final class Divergence {
        private final List<long[]> eval;
        private final List<float[]> logProbabilities = new ArrayList<>();

        Divergence(CausalLM dense, List<long[]> eval) {
            this.eval = eval;
            for (long[] ids : eval) {
                logProbabilities.add(logSoftmax(dense, ids));
            }
        }

        double of(CausalLM model) {
            double sum = 0;
            long positions = 0;
            for (int i = 0; i < eval.size(); i++) {
                float[] p = logProbabilities.get(i);
                float[] q = logSoftmax(model, eval.get(i));
                int vocab = p.length / eval.get(i).length;
                for (int t = 0; t + 1 < eval.get(i).length; t++) {
                    for (int v = t * vocab; v < (t + 1) * vocab; v++) {
                        sum += Math.exp(p[v]) * ((double) p[v] - q[v]);
                    }
                    positions++;
                }
            }
            return sum / positions;
        }

        private static float[] logSoftmax(CausalLM model, long[] ids) {
            try (NDManager m = model.manager().newSubManager()) {
                return model.forward(m.create(ids, new Shape(1, ids.length)), null).toType(DataType.FLOAT32, false)
                        .logSoftmax(-1).toFloatArray();
            }
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
            float scale = HalfFloats.roundToF16((hi - lo) / top);
            float zero = scale == 0 ? 0 : Math.round(-lo / scale);
            for (int i = s; i < end; i++) {
                out[i] = scale == 0 ? lo : (Math.max(0, Math.min(top, Math.round(w[i] / scale) + zero)) - zero) * scale;
            }
        }
        return out;
    }

    /**
     * The markdown table (label, bits, perplexity, the line's other figures) and the curve of the {@code RESULT}
     * lines in {@code lines}: one series per family. When a point's perplexity is more than {@value #EXCESS_SPAN}
     * times the float model's (a float line is given), the curve shows each point's perplexity above the float model's on a logarithmic axis (so the
     * 4- to 8-bit points do not sit on one line next to a 1-bit one); otherwise perplexity itself, the float model
     * a dashed line.
     */
    static void plot(List<String> lines, Path png, String title, boolean kl) throws IOException {
        System.setProperty("java.awt.headless", "true");
        List<String> table = new ArrayList<>();
        table.add("| method | bits/param | perplexity | other figures |");
        table.add("|---|---|---|---|");
        List<String[]> points = new ArrayList<>();
        Double dense = null;
        for (String line : lines) {
            if (!line.startsWith("RESULT ")) {
                continue;
            }
            String body = line.substring("RESULT ".length());
            String family = body.split(" ")[0];
            String label = body.substring(0, body.indexOf(" bits="));
            if (!CURVES.contains(family) && label.length() > family.length()) {
                label = label.substring(family.length() + 1);
            }
            Map<String, String> kv = new LinkedHashMap<>();
            for (String part : body.substring(body.indexOf(" bits=") + 1).split(" ")) {
                String[] pair = part.split("=", 2);
                kv.put(pair[0], pair[1]);
            }
            String bits = kv.remove("bits");
            String ppl = kv.remove("ppl");
            table.add(String.format(Locale.ROOT, "| %s | %.3f | %.3f | %s |", label, Double.parseDouble(bits),
                    Double.parseDouble(ppl), kv.entrySet().stream().map(e -> e.getKey() + " " + e.getValue())
                            .collect(Collectors.joining(", "))));
            if (kl) {
                if (kv.containsKey("kl")) {
                    points.add(new String[] {family, label, bits, kv.get("kl")});
                }
            } else if (family.equals("dense")) {
                dense = Double.parseDouble(ppl);
            } else {
                points.add(new String[] {family, label, bits, ppl});
            }
        }
        double lo = points.stream().mapToDouble(p -> Double.parseDouble(p[3])).min().orElse(1);
        double hi = points.stream().mapToDouble(p -> Double.parseDouble(p[3])).max().orElse(1);
        boolean excess = dense != null && hi / dense > EXCESS_SPAN;
        Map<String, XYSeries> series = new LinkedHashMap<>();
        for (String[] p : points) {
            String family = p[0];
            String label = p[1];
            String curve = switch (family) {
                case "cvxq" -> "CVXQ (allocated depths)";
                case "rtn" -> "round-to-nearest, " + label.substring(label.indexOf("g=") + 2) + "-element groups";
                case "uniform" -> "CVXQ quantizer, one depth for all";
                case "hqq" -> "HQQ" + label.substring(label.indexOf(','), label.indexOf(" along"));
                case "aqlm" -> "AQLM";
                case "bnb8" -> "bitsandbytes LLM.int8";
                case "eetq" -> "EETQ int8";
                default -> family.toUpperCase(Locale.ROOT);
            };
            double y = Double.parseDouble(p[3]);
            series.computeIfAbsent(curve, XYSeries::new).add(Double.parseDouble(p[2]),
                    excess ? Math.max(EXCESS_FLOOR, y - dense) : y);
        }
        XYSeriesCollection data = new XYSeriesCollection();
        series.values().forEach(data::addSeries);
        JFreeChart chart = ChartFactory.createXYLineChart(title, "bits per parameter (side information included)",
                "perplexity", data, PlotOrientation.VERTICAL, true, false, false);
        XYPlot plot = chart.getXYPlot();
        plot.setBackgroundPaint(Color.WHITE);
        plot.setRangeGridlinePaint(Color.LIGHT_GRAY);
        plot.setDomainGridlinePaint(Color.LIGHT_GRAY);
        XYLineAndShapeRenderer renderer = new XYLineAndShapeRenderer(true, true);
        for (int i = 0; i < data.getSeriesCount(); i++) {
            renderer.setSeriesStroke(i, new BasicStroke(2f));
            String key = data.getSeriesKey(i).toString();
            renderer.setSeriesLinesVisible(i, !POINTS.contains(key));
        }
        plot.setRenderer(renderer);
        if (kl) {
            LogAxis axis = new LogAxis("KL divergence from float32, nats per token (log)");
            axis.setNumberFormatOverride(new DecimalFormat("0.#####"));
            plot.setRangeAxis(axis);
        } else if (excess) {
            LogAxis axis = new LogAxis(String.format(Locale.ROOT, "perplexity - float32's %.3f (log; below %s drawn at"
                    + " %s)", dense, EXCESS_FLOOR, EXCESS_FLOOR));
            axis.setNumberFormatOverride(new DecimalFormat("0.####"));
            plot.setRangeAxis(axis);
        } else {
            if (dense != null) {
                ValueMarker marker = new ValueMarker(dense, Color.GRAY, new BasicStroke(1.5f, BasicStroke.CAP_BUTT,
                        BasicStroke.JOIN_MITER, 10f, new float[] {6f, 4f}, 0f));
                marker.setLabel(String.format(Locale.ROOT, "float32 %.3f", dense));
                marker.setLabelAnchor(RectangleAnchor.TOP_RIGHT);
                marker.setLabelTextAnchor(TextAnchor.BOTTOM_RIGHT);
                plot.addRangeMarker(marker);
                lo = Math.min(lo, dense);
            }
            ((NumberAxis) plot.getRangeAxis()).setAutoRangeIncludesZero(false);
            plot.getRangeAxis().setRange(lo - 0.05 * (hi - lo), hi + 0.05 * (hi - lo));
        }
        ((NumberAxis) plot.getDomainAxis()).setAutoRangeIncludesZero(false);
        ChartUtils.saveChartAsPNG(png.toFile(), chart, 900, 560);
        table.forEach(System.out::println);
    }
}
