package io.qlora4j.bench;

import ai.djl.ndarray.NDArray;
import ai.djl.ndarray.NDManager;
import io.qlora4j.quant.BlockwiseQuantizer;
import io.qlora4j.quant.NdQuantizedTensor;
import io.qlora4j.quant.QuantizedTensor;
import java.util.Collection;
import java.util.Locale;
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
import org.openjdk.jmh.runner.options.OptionsBuilder;

/**
 * NF4 quantization and dequantization throughput against {@code System.arraycopy} of the same
 * float32 bytes, all cores. Run after {@code ./mvnw -B -o -pl bench -am package -DskipTests}:
 * {@code java -cp bench/target/classes:$(cat bench/target/classpath.txt)
 * io.qlora4j.bench.QuantizeBenchmark} prints GB/s of float32 input and the ratio to the copy rate
 * (or pass the class to {@code org.openjdk.jmh.Main} with {@code -f 1 -wi 2 -i 3}).
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

    /** Float32 input bytes processed per second, in GB/s. */
    private static double gigabytesPerSecond(RunResult r) {
        return r.getPrimaryResult().getScore() * 4.0 * Integer.parseInt(r.getParams().getParam("size")) / 1e9;
    }

    /** Runs the benchmarks with short warmup and prints GB/s of float32 input and the copy ratio. */
    public static void main(String[] args) throws RunnerException {
        Collection<RunResult> results = new Runner(new OptionsBuilder()
                .include(QuantizeBenchmark.class.getName() + "\\.")
                .build()).run();
        double copyRate = 0;
        for (RunResult r : results) {
            if (r.getParams().getBenchmark().endsWith(".copy")) {
                copyRate = gigabytesPerSecond(r);
            }
        }
        System.out.printf(Locale.ROOT, "%-20s %10s %10s%n", "benchmark", "GB/s", "x copy");
        for (RunResult r : results) {
            String name = r.getParams().getBenchmark();
            double gbs = gigabytesPerSecond(r);
            System.out.printf(Locale.ROOT, "%-20s %10.2f %10.3f%n",
                    name.substring(name.lastIndexOf('.') + 1), gbs, gbs / copyRate);
        }
        System.out.printf(Locale.ROOT, "cores: %d%n", Runtime.getRuntime().availableProcessors());
    }
}
