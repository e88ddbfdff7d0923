package io.qlora4j.bench;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.adapters.MergeBase;
import io.qlora4j.adapters.MergedExport;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.model.safetensors.SafetensorsWriter;
import io.qlora4j.trainer.cli.ProcessMemory;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.SplittableRandom;

/**
 * Throughput and peak memory of a merged export: a TinyLlama-1.1B-shaped checkpoint (random bf16 weights, 2 GB
 * shards, 2.2 GB) and a random r=16 adapter on every projection are written to a temp directory, then each export
 * mode runs in a fresh JVM ({@link ChildJvm#HEAP}) that reports its wall time and {@code VmHWM}: merge onto the original
 * weights, onto their NF4+DQ round trip, and the latter re-quantized to NF4+DQ, each writing bf16 into 5 GB
 * shards (one file). Throughput counts base checkpoint bytes per second. Everything is deleted at the end.
 */
public final class ExportBenchmark {
    private static final int RANK = 16;
    private static final List<String> MODES = List.of("original", "dequantized", "dequantized+nf4");

    private ExportBenchmark() {}

    /** Writes checkpoint and adapter, runs each export mode in a child JVM and prints the table; {@code --export} is the child. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        if (args.length == 5 && args[0].equals("--export")) {
            export(Path.of(args[1]), Path.of(args[2]), Path.of(args[3]), args[4]);
            return;
        }
        DecoderConfig config = BenchModels.tinyLlama();
        System.out.println("ExportBenchmark: LoRA merge + bf16 export of a TinyLlama-1.1B-shaped checkpoint"
                + " (random bf16 weights, r=" + RANK + " on every projection), each mode in a fresh JVM");
        System.out.println(Machine.describe());
        long checkpointBytes = 2L * ModelLoader.expectedShapes(config).values().stream()
                .mapToLong(RandomCheckpoint::numel).sum();
        Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
        long free = Files.getFileStore(tmp).getUsableSpace();
        // The checkpoint, one export at a time, and the export's shard while the writer copies it into place.
        if (free < 3 * checkpointBytes + 1_000_000_000L) {
            System.err.printf(Locale.ROOT, "ExportBenchmark: %s has %.1f GB free; needs %.1f GB (set"
                    + " -Djava.io.tmpdir=DIR)%n", tmp, free / 1e9, (3 * checkpointBytes + 1e9) / 1e9);
            System.exit(1);
        }
        try (RandomCheckpoint checkpoint = RandomCheckpoint.write(config, DType.BF16, 1)) {
            System.out.printf(Locale.ROOT, "checkpoint: %.2f GB bf16 in %s%n", checkpoint.diskBytes() / 1e9,
                    checkpoint.dir());
            Path adapter = writeAdapter(config, checkpoint.dir().resolve("adapter"), 2);
            System.out.printf(Locale.ROOT, "%n%-18s %9s %9s %10s %12s %14s%n", "mode", "seconds", "GB/s", "written GB",
                    "peak RSS MB", "baseline MB");
            for (String mode : MODES) {
                Path out = checkpoint.dir().resolve("export-" + mode);
                Map<String, Long> r = ChildJvm.run(ExportBenchmark.class, ChildJvm.HEAP, "--export",
                        checkpoint.dir().toString(), adapter.toString(), out.toString(), mode);
                double seconds = r.get("exportMs") / 1e3;
                System.out.printf(Locale.ROOT, "%-18s %9.1f %9.3f %10.2f %12.0f %14.0f%n", mode, seconds,
                        r.get("bytesRead") / 1e9 / seconds, r.get("bytesWritten") / 1e9, r.get("hwm") / 1e6,
                        r.get("baselineRss") / 1e6);
                RandomCheckpoint.deleteTree(out);
            }
            System.out.println("(GB = 10^9 bytes of base checkpoint read per second of export; peak RSS is the"
                    + " export JVM's VmHWM, baseline its RSS after libtorch loaded, before the export)");
        }
    }

    /** The child: one export, reporting time, sizes and memory as {@code result.key=value}. */
    private static void export(Path base, Path adapter, Path out, String mode) throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            manager.zeros(new Shape(1)).close(); // loads libtorch before the baseline
        }
        long baseline = ProcessMemory.statusBytes("VmRSS");
        MergedExport.Builder builder = MergedExport.builder(base, List.of(adapter))
                .optMergeBase(mode.equals("original") ? MergeBase.ORIGINAL : MergeBase.DEQUANTIZED);
        if (mode.endsWith("+nf4")) {
            builder.optRequantize(BaseFormats.QLORA);
        }
        long start = System.nanoTime();
        MergedExport.Report report = builder.build().writeTo(out);
        ChildJvm.result("exportMs", (System.nanoTime() - start) / 1_000_000);
        ChildJvm.result("bytesRead", report.bytesRead());
        ChildJvm.result("bytesWritten", report.bytesWritten());
        ChildJvm.result("hwm", ProcessMemory.statusBytes("VmHWM"));
        ChildJvm.result("baselineRss", baseline);
    }

    /**
     * A PEFT adapter of rank {@link #RANK} on every projection: A uniform with standard deviation
     * {@code 1/sqrt(3 in)} (PEFT's initialisation), B small and random as after training; float32.
     */
    private static Path writeAdapter(DecoderConfig config, Path dir, long seed) throws IOException, ModelException {
        SplittableRandom random = new SplittableRandom(seed);
        Map<String, long[]> shapes = ModelLoader.expectedShapes(config);
        try (SafetensorsWriter w = SafetensorsWriter.builder(dir).optBaseName("adapter_model").build()) {
            for (int layer = 0; layer < config.numHiddenLayers(); layer++) {
                for (String name : config.linearNames()) {
                    String module = "model.layers." + layer + "." + name;
                    long[] outIn = shapes.get(module + ".weight");
                    w.addFloats("base_model.model." + module + ".lora_A.weight", DType.F32, new long[] {RANK, outIn[1]},
                            uniform(random, RANK * outIn[1], 1 / Math.sqrt(outIn[1])));
                    w.addFloats("base_model.model." + module + ".lora_B.weight", DType.F32, new long[] {outIn[0], RANK},
                            uniform(random, outIn[0] * RANK, 0.01));
                }
            }
        }
        Files.writeString(dir.resolve("adapter_config.json"), "{\"peft_type\": \"LORA\", \"task_type\": \"CAUSAL_LM\","
                + " \"r\": " + RANK + ", \"lora_alpha\": " + 2 * RANK + ", \"target_modules\": \"all-linear\"}");
        return dir;
    }

    private static float[] uniform(SplittableRandom random, long n, double bound) {
        float[] v = new float[Math.toIntExact(n)];
        for (int i = 0; i < v.length; i++) {
            v[i] = (float) ((2 * random.nextDouble() - 1) * bound);
        }
        return v;
    }
}
