package io.qlora4j.bench;

import ai.djl.ndarray.NDManager;
import ai.djl.ndarray.types.Shape;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.trainer.cli.ProcessMemory;
import java.lang.management.BufferPoolMXBean;
import java.lang.management.ManagementFactory;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import java.util.Map;

/**
 * Peak resident memory of loading a TinyLlama-1.1B-shaped checkpoint (random bf16 weights, 2 GB shards,
 * about 2.2 GB on disk) with NF4+DQ through {@link ModelLoader}, against the size of the loaded model:
 * packed projections plus 16-bit embeddings and lm_head and float32 norms. The checkpoint is written here,
 * then loaded in a fresh JVM with a modest heap so that only the loader's memory counts; that JVM reports
 * its {@code VmHWM} after the load and the highest {@code VmRSS} sampled during it. The checkpoint is
 * deleted afterwards. Target (issue 3): peak RSS &lt;= loaded model + 0.6 GB.
 */
public final class LoadMemoryBenchmark {
    /** JVM options of the loading process. */
    private static final long BUDGET = 600_000_000L;
    private static final int SAMPLE_MS = 10;

    private LoadMemoryBenchmark() {}

    /** Writes the checkpoint, measures the load in a child JVM and prints the table; {@code --load DIR} is the child. */
    public static void main(String[] args) throws Exception {
        System.setProperty("ai.djl.offline", System.getProperty("ai.djl.offline", "true"));
        if (args.length == 2 && args[0].equals("--load")) {
            loadAndReport(Path.of(args[1]));
            return;
        }
        System.out.println("LoadMemoryBenchmark: NF4+DQ load of a TinyLlama-1.1B-shaped checkpoint"
                + " (random bf16 weights) through ModelLoader, measured in a fresh JVM");
        System.out.println(Machine.describe());
        report(measure(BenchModels.tinyLlama()));
    }

    /**
     * The child's figures in bytes by key ({@code hwm}, {@code modelBytes}, {@code projectionBytes},
     * {@code embedBytes}, {@code baselineRss}, {@code rssAfter}, {@code sampledPeakRss}, ...) and the load in ms
     * ({@code loadMs}).
     */
    record Result(Map<String, Long> values) {
        /** Peak RSS of the loading JVM ({@code VmHWM}). */
        long hwm() {
            return values.get("hwm");
        }

        /** Bytes held by the loaded model. */
        long modelBytes() {
            return values.get("modelBytes");
        }
    }

    /** Writes a random bf16 checkpoint of {@code config} to a temp dir and measures its NF4+DQ load in a fresh JVM. */
    static Result measure(DecoderConfig config) throws Exception {
        long needed = 2L * ModelLoader.expectedShapes(config).values().stream().mapToLong(RandomCheckpoint::numel).sum();
        Path tmp = Path.of(System.getProperty("java.io.tmpdir"));
        long free = Files.getFileStore(tmp).getUsableSpace();
        if (free < needed + 1_000_000_000L) {
            throw new IllegalStateException(String.format(Locale.ROOT, "%s has %.1f GB free; the checkpoint needs"
                    + " %.1f GB plus 1 GB headroom (set -Djava.io.tmpdir=DIR)", tmp, free / 1e9, needed / 1e9));
        }
        long start = System.nanoTime();
        try (RandomCheckpoint checkpoint = RandomCheckpoint.write(config, DType.BF16, 1)) {
            double writeSeconds = (System.nanoTime() - start) / 1e9;
            System.out.printf(Locale.ROOT, "checkpoint: %.2f GB bf16 in %s (%.1f GB free before), written in %.0f s%n",
                    checkpoint.diskBytes() / 1e9, checkpoint.dir(), free / 1e9, writeSeconds);
            System.out.println("loader JVM: java " + String.join(" ", ChildJvm.HEAP) + " ... --load DIR");
            return new Result(ChildJvm.run(LoadMemoryBenchmark.class, ChildJvm.HEAP, "--load", checkpoint.dir().toString()));
        }
    }

    /** The child: loads with NF4+DQ while sampling VmRSS, then prints sizes and memory as {@code result.key=value}. */
    private static void loadAndReport(Path dir) throws Exception {
        try (NDManager manager = NDManager.newBaseManager()) {
            manager.zeros(new Shape(1)).close(); // loads libtorch before the baseline
            long baseline = ProcessMemory.statusBytes("VmRSS");
            RssSampler sampler = new RssSampler();
            sampler.start();
            long start = System.nanoTime();
            try (CausalLM model = ModelLoader.builder().optFormat(BaseFormats.QLORA).build()
                    .load(dir, manager)) {
                long loadMs = (System.nanoTime() - start) / 1_000_000;
                sampler.interrupt();
                sampler.join();
                long projections = 0;
                for (int l = 0; l < model.numLayers(); l++) {
                    for (String name : model.block(l).linearNames()) {
                        projections += model.block(l).linear(name).bytes();
                    }
                }
                long embed = model.embedTokens().bytes();
                ChildJvm.result("hwm", ProcessMemory.statusBytes("VmHWM"));
                ChildJvm.result("rssAfter", ProcessMemory.statusBytes("VmRSS"));
                ChildJvm.result("sampledPeakRss", sampler.peak);
                ChildJvm.result("samples", sampler.samples);
                ChildJvm.result("baselineRss", baseline);
                ChildJvm.result("loadMs", loadMs);
                ChildJvm.result("modelBytes", model.bytes());
                ChildJvm.result("projectionBytes", projections);
                ChildJvm.result("embedBytes", embed);
                ChildJvm.result("heapCommitted", Runtime.getRuntime().totalMemory());
                ChildJvm.result("directBytes", directBufferBytes());
            }
        }
    }

    private static void report(Result result) {
        Map<String, Long> r = result.values();
        long model = result.modelBytes();
        long hwm = result.hwm();
        long head = model - r.get("projectionBytes") - r.get("embedBytes");
        System.out.printf(Locale.ROOT, "load: %.1f s; VmRSS sampled every %d ms (%d samples)%n%n",
                r.get("loadMs") / 1e3, SAMPLE_MS, r.get("samples"));
        System.out.println("loaded model (bytes held by CausalLM)               MB");
        row("  NF4+DQ projections (packed codes, coded scales)", r.get("projectionBytes"));
        row("  embed_tokens, float16 rows", r.get("embedBytes"));
        row("  lm_head (float16 rows) + norms (float32)", head);
        row("  total", model);
        System.out.println("process memory (loader JVM)");
        row("  RSS after engine start, before load (JVM + libtorch)", r.get("baselineRss"));
        row("  RSS after load", r.get("rssAfter"));
        row("  peak VmRSS sampled during load", r.get("sampledPeakRss"));
        row("  peak RSS (VmHWM)", hwm);
        row("  heap committed at the end", r.get("heapCommitted"));
        row("  java.nio direct buffers (model arrays on CPU)", r.get("directBytes"));
        row("  peak RSS - loaded model (target <= 600 MB)", hwm - model);
        System.out.printf(Locale.ROOT, "%nratios: peak RSS / loaded model = %.2f; peak RSS / (loaded model + 0.6 GB)"
                + " = %.2f; overhead / 0.6 GB = %.2f -> target %s%n", (double) hwm / model,
                (double) hwm / (model + BUDGET), (double) (hwm - model) / BUDGET, hwm <= model + BUDGET ? "MET" : "MISSED");
        System.out.println("(MB = 10^6 bytes; the loaded model counts every projection packed and embed_tokens,"
                + " lm_head and norms dense)");
    }

    private static void row(String label, long bytes) {
        System.out.printf(Locale.ROOT, "%-56s %9.1f%n", label, bytes / 1e6);
    }

    /** Bytes in live java.nio direct buffers: on the CPU, DJL arrays created from Java data share them. */
    private static long directBufferBytes() {
        return ManagementFactory.getPlatformMXBeans(BufferPoolMXBean.class).stream()
                .filter(pool -> pool.getName().equals("direct")).mapToLong(BufferPoolMXBean::getMemoryUsed).sum();
    }

    /** Samples VmRSS until interrupted and keeps the highest value. */
    private static final class RssSampler extends Thread {
        volatile long peak;
        volatile int samples;

        RssSampler() {
            super("rss-sampler");
            setDaemon(true);
        }

        @Override
        public void run() {
            while (!isInterrupted()) {
                long rss;
                try {
                    rss = ProcessMemory.statusBytes("VmRSS");
                } catch (IllegalStateException e) {
                    if (isInterrupted()) {
                        return; // stopped while reading: the interrupt closed the file
                    }
                    throw e;
                }
                peak = Math.max(peak, rss);
                samples++;
                try {
                    Thread.sleep(SAMPLE_MS);
                } catch (InterruptedException e) {
                    return;
                }
            }
        }
    }
}
