package io.qlora4j.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.DataType;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.checkpoint.CheckpointQuantizer;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.StoredWeight;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.FloatSource;
import io.qlora4j.quant.NdQuantizedTensor;
import io.qlora4j.quant.QuantizedTensor;
import io.qlora4j.quant.Simd;
import java.io.IOException;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.openjdk.jmh.annotations.Benchmark;
import org.openjdk.jmh.annotations.BenchmarkMode;
import org.openjdk.jmh.annotations.Fork;
import org.openjdk.jmh.annotations.Level;
import org.openjdk.jmh.annotations.Measurement;
import org.openjdk.jmh.annotations.Mode;
import org.openjdk.jmh.annotations.OutputTimeUnit;
import org.openjdk.jmh.annotations.Param;
import org.openjdk.jmh.annotations.Scope;
import org.openjdk.jmh.annotations.Setup;
import org.openjdk.jmh.annotations.State;
import org.openjdk.jmh.annotations.TearDown;
import org.openjdk.jmh.annotations.Warmup;
import org.openjdk.jmh.results.RunResult;
import org.openjdk.jmh.runner.Runner;
import org.openjdk.jmh.runner.RunnerException;
import org.openjdk.jmh.runner.options.ChainedOptionsBuilder;
import org.openjdk.jmh.runner.options.OptionsBuilder;

/**
 * Quantization throughput against {@code System.arraycopy} of the same float32 bytes, all cores: NF4 quantize and
 * dequantize, and every on-the-fly base format of the registry ({@link #quantizeFormat}, one JMH parameter value per
 * format: HQQ with its optimizer, LLM.int8, EETQ, ...). Run after {@code ./mvnw -B -o -pl bench -am package
 * -DskipTests}: {@code java -cp bench/target/classes:$(cat bench/target/classpath.txt)
 * io.qlora4j.bench.QuantizeBenchmark} prints GB/s of float32 input and the ratio to the copy rate (or pass the class
 * to {@code org.openjdk.jmh.Main} with {@code -f 1 -wi 2 -i 3}). {@link #model} times whole checkpoints instead: a
 * random model quantized by {@code quantize}'s {@link CheckpointQuantizer} in each format, against a file copy.
 */
@State(Scope.Benchmark)
@BenchmarkMode(Mode.Throughput)
@OutputTimeUnit(TimeUnit.SECONDS)
@Warmup(iterations = 2, time = 2)
@Measurement(iterations = 3, time = 2)
@Fork(value = 1, jvmArgsAppend = {"-Xmx4g", "-Dai.djl.offline=true"})
public class QuantizeBenchmark {

    /** Elements per tensor: 16M floats = 64 MiB, larger than any cache. */
    @Param("16777216")
    public int size;

    private float[] data;
    private float[] target;
    private long[] shape;
    private BlockwiseQuantizer quantizer;
    private QuantizedTensor quantized;
    private NDManager manager;
    private NdQuantizedTensor onDevice;

    /** Gaussian weights (std 0.02), the quantizer (NF4, blocksize 64, double quant, all cores). */
    @Setup(Level.Trial)
    public void setUp() {
        Random rnd = new Random(42);
        data = new float[size];
        for (int i = 0; i < size; i++) {
            data[i] = (float) (rnd.nextGaussian() * 0.02);
        }
        target = new float[size];
        shape = new long[] {size / 4096, 4096};
        quantizer = BlockwiseQuantizer.builder().build();
        quantized = quantizer.quantize(data, shape);
        manager = NDManager.newBaseManager();
        onDevice = NdQuantizedTensor.upload(quantized, manager);
    }

    /** Frees the device copy. */
    @TearDown(Level.Trial)
    public void tearDown() {
        onDevice.close();
        manager.close();
    }

    /** Baseline: copy the float32 input once. */
    @Benchmark
    public float[] copy() {
        System.arraycopy(data, 0, target, 0, size);
        return target;
    }

    /** NF4 with double-quantized scales, blocksize 64. */
    @Benchmark
    public QuantizedTensor quantizeNf4Dq() {
        return quantizer.quantize(data, shape);
    }

    /** Back to float32 in Java (allocates the output). */
    @Benchmark
    public float[] dequantizeJava() {
        return quantizer.dequantize(quantized);
    }

    /** Back to float32 with NDArray ops on the engine's device (CPU here). */
    @Benchmark
    public long dequantizeNdArray() {
        try (NDArray out = onDevice.dequantize()) {
            return out.size();
        }
    }

    /**
     * Back to float32 by Java into this thread's reused buffer, as a training step's graph-free products decode: the
     * scalar loop, whatever this JVM was started with.
     */
    @Benchmark
    @Fork(value = 1, jvmArgsAppend = {"-Xmx4g", "-Dai.djl.offline=true", "-Dqlora4j.simd=false"})
    public long dequantizeScratch() {
        try (NDArray out = onDevice.dequantizeTransient(DataType.FLOAT32)) {
            return out.size();
        }
    }

    /**
     * {@link #dequantizeScratch} with the Vector API module loaded: in SIMD lanes where the CPU has 16 float lanes
     * ({@link Simd}), else the scalar loop again.
     */
    @Benchmark
    @Fork(value = 1, jvmArgsAppend = {"-Xmx4g", "-Dai.djl.offline=true", Simd.JVM_OPTION})
    public long dequantizeScratchSimd() {
        try (NDArray out = onDevice.dequantizeTransient(DataType.FLOAT32)) {
            return out.size();
        }
    }

    /** The base format {@link #quantizeFormat} quantizes to. */
    @State(Scope.Benchmark)
    public static class FormatChoice {
        /** A format of the registry's menu as {@code method:bits} ({@link BenchFormats#id}); the suite passes all. */
        @Param("bnb:4")
        public String format;

        private BaseFormat chosen;

        /** Chooses the format. */
        @Setup(Level.Trial)
        public void setUp() throws ModelException {
            chosen = BenchFormats.of(format);
        }
    }

    /** The input through a base format's {@link BaseFormat#quantize}, as the loader and {@code quantize} call it. */
    @Benchmark
    public StoredWeight quantizeFormat(FormatChoice choice) throws ModelException {
        return choice.chosen.quantize(FloatSource.of(data), shape);
    }

    /** Float32 input bytes processed per second, in GB/s. */
    private static double gigabytesPerSecond(RunResult r) {
        return r.getPrimaryResult().getScore() * 4.0 * Integer.parseInt(r.getParams().getParam("size")) / 1e9;
    }

    /** Runs the benchmarks with short warmup and prints GB/s of float32 input and the copy ratio. */
    public static void main(String[] args) throws RunnerException {
        Map<String, Double> rates = measure(new OptionsBuilder().include(QuantizeBenchmark.class.getName() + "\\.")
                .param("format", BenchFormats.menu().stream().map(BenchFormats::id).toArray(String[]::new)));
        System.out.printf(Locale.ROOT, "%-26s %10s %10s%n", "benchmark", "GB/s", "x copy");
        rates.forEach((name, gbs) -> System.out.printf(Locale.ROOT, "%-26s %10.2f %10.3f%n", name, gbs,
                gbs / rates.get("copy")));
        System.out.printf(Locale.ROOT, "cores: %d%n", Runtime.getRuntime().availableProcessors());
    }

    /**
     * Runs the benchmarks {@code options} selects (in a forked JVM, as JMH does) and returns GB/s of float32 input
     * by benchmark method name ({@code copy}, {@code quantizeNf4Dq}, ...).
     */
    static Map<String, Double> measure(ChainedOptionsBuilder options) throws RunnerException {
        // the forks take this JVM's arguments but the Vector API module, which quantizing does not use and which
        // would make every fork print its warning line; a benchmark that decodes in lanes names it itself
        options.jvmArgs(ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
                .filter(a -> !a.equals(Simd.JVM_OPTION)).toArray(String[]::new));
        Map<String, Double> rates = new LinkedHashMap<>();
        for (RunResult r : new Runner(options.build()).run()) {
            String name = r.getParams().getBenchmark();
            String format = r.getParams().getParam("format");
            rates.put(name.substring(name.lastIndexOf('.') + 1) + (format == null ? "" : "[" + format + "]"),
                    gigabytesPerSecond(r));
        }
        return rates;
    }

    /** The {@link #measure} key of {@link #quantizeFormat} over {@code format}. */
    static String key(BaseFormat format) {
        return "quantizeFormat[" + BenchFormats.id(format) + "]";
    }

    /**
     * Seconds to copy a random bf16 checkpoint of {@code config} file by file (key {@code copy}), and to quantize it
     * with {@link CheckpointQuantizer} (what {@code qlora4j quantize} runs: read, quantize, write, tensor by tensor)
     * into each of {@code formats} (keyed by {@link BaseFormat#describe}), in this JVM, one after the other; every
     * output is deleted after it is timed.
     */
    static Map<String, Double> model(DecoderConfig config, List<BaseFormat> formats) throws IOException, ModelException {
        Map<String, Double> seconds = new LinkedHashMap<>();
        try (RandomCheckpoint checkpoint = RandomCheckpoint.write(config, DType.BF16, 7)) {
            Path work = Files.createTempDirectory("qlora4j-bench-quantize-");
            try {
                Path copy = Files.createDirectory(work.resolve("copy"));
                long start = System.nanoTime();
                try (var files = Files.list(checkpoint.dir())) {
                    for (Path f : (Iterable<Path>) files::iterator) {
                        Files.copy(f, copy.resolve(f.getFileName()));
                    }
                }
                seconds.put("copy", (System.nanoTime() - start) / 1e9);
                RandomCheckpoint.deleteTree(copy);
                for (BaseFormat format : formats) {
                    Path out = work.resolve("out");
                    start = System.nanoTime();
                    CheckpointQuantizer.builder(format).build().quantize(checkpoint.dir(), out);
                    seconds.put(format.describe(), (System.nanoTime() - start) / 1e9);
                    System.out.printf(Locale.ROOT, "   %s: %.1f s%n", format.describe(), seconds.get(format.describe()));
                    RandomCheckpoint.deleteTree(out);
                }
            } finally {
                RandomCheckpoint.deleteTree(work);
            }
        }
        return seconds;
    }
}
