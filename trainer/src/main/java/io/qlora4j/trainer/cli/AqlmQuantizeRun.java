package io.qlora4j.trainer.cli;

import io.qlora4j.model.ModelException;
import io.qlora4j.model.Tokenizer;
import io.qlora4j.model.format.AqlmFormat;
import io.qlora4j.model.format.FormatOption;
import io.qlora4j.model.calibration.AqlmCheckpointQuantizer;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.quant.aqlm.AqlmBlockTuner;
import io.qlora4j.quant.aqlm.AqlmQuantizer;
import io.qlora4j.quant.aqlm.AqlmScheme;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;

/**
 * {@code qlora4j quantize quantization_method=aqlm}: the calibration windows from {@code dataset} and the AQLM
 * keys turned into an {@link AqlmCheckpointQuantizer} run, with a progress line that shows the linear being
 * quantized and its current relative error.
 */
final class AqlmQuantizeRun {
    private AqlmQuantizeRun() {}

    static void run(JobConfig config, AqlmScheme scheme, Path source, Path target, PrintWriter out, boolean terminal)
            throws Exception {
        DecoderConfig model = ModelFamilies.read(source.resolve("config.json"));
        int length = Math.min(config.integer("cutoff_len"), model.maxPositionEmbeddings());
        long seed = config.integer("seed");
        List<int[]> windows = windows(source, Path.of(config.require("dataset")), length,
                config.integer(AqlmFormat.NSAMPLES.name()), seed);
        AqlmQuantizer layers = AqlmQuantizer.builder(scheme)
                .optBeamSize(integer(config, AqlmFormat.BEAM_SIZE))
                .optMaxEpochs(integer(config, AqlmFormat.MAX_EPOCHS))
                .optStepsPerEpoch(integer(config, AqlmFormat.STEPS_PER_EPOCH))
                .optLr(config.number(AqlmFormat.LR.name()))
                .optRelativeMseTolerance(config.number(AqlmFormat.TOLERANCE.name()))
                .optInitMaxIter(integer(config, AqlmFormat.INIT_MAX_ITER))
                .build();
        AqlmBlockTuner tuner = AqlmBlockTuner.builder()
                .optEpochs(integer(config, AqlmFormat.FINETUNE_EPOCHS))
                .optLr(config.number(AqlmFormat.FINETUNE_LR.name()))
                .optBatchSize(integer(config, AqlmFormat.FINETUNE_BATCH))
                .build();
        out.printf(Locale.ROOT, "AQLM %s: %d calibration windows of %d tokens from %s%n", scheme, windows.size(), length,
                config.string("dataset"));
        long start = System.nanoTime();
        AqlmCheckpointQuantizer.Report r = AqlmCheckpointQuantizer.builder(layers).optTuner(tuner).optSeed(seed)
                .optMaxShardBytes(config.integer("export_size") * 1_000_000_000L).build()
                .quantize(source, target, windows, new Bar(out, terminal));
        out.printf(Locale.ROOT, "%nquantized %d linears (%,d parameters) to AQLM %s in %.1f s: %.3f bits per quantized "
                + "parameter, mean relative error %.4f%nwrote %s%n", r.linears(), r.parameters(), scheme,
                (System.nanoTime() - start) / 1e9, r.bitsPerParameter(), r.meanRelativeError(), target);
    }

    private static int integer(JobConfig config, FormatOption option) {
        return config.integer(option.name());
    }

    /**
     * {@code count} windows of {@code length} tokens at random offsets (from {@code seed}) of the dataset's texts,
     * tokenized and concatenated, as the AQLM repository samples its calibration data.
     */
    static List<int[]> windows(Path model, Path dataset, int length, int count, long seed) throws Exception {
        List<Long> ids = new ArrayList<>();
        try (Tokenizer tokenizer = Tokenizer.load(model)) {
            TextFile.forEach(dataset, text -> {
                for (long id : tokenizer.encode(text)) {
                    ids.add(id);
                }
            });
        }
        if (ids.size() < length) {
            throw new ConfigException("dataset: " + dataset + " holds " + ids.size() + " tokens, fewer than one "
                    + "calibration window of " + length + " (cutoff_len)");
        }
        Random rnd = new Random(seed);
        List<int[]> windows = new ArrayList<>();
        for (int w = 0; w < count; w++) {
            int from = rnd.nextInt(ids.size() - length + 1);
            int[] window = new int[length];
            for (int i = 0; i < length; i++) {
                window[i] = Math.toIntExact(ids.get(from + i));
            }
            windows.add(window);
        }
        return windows;
    }

    /** The progress line: linears done, a bar, the linear in progress and its relative error. */
    private static final class Bar implements AqlmCheckpointQuantizer.Listener {
        private static final int WIDTH = 24;
        private final PrintWriter out;
        private final boolean terminal;
        private final long start = System.nanoTime();
        private long lastDraw;

        Bar(PrintWriter out, boolean terminal) {
            this.out = out;
            this.terminal = terminal;
        }

        @Override
        public void step(String module, int done, int total, double relativeError) {
            long now = System.nanoTime();
            if (terminal && now - lastDraw > 200_000_000L) {
                draw(module, done, total, relativeError);
                lastDraw = now;
            }
        }

        @Override
        public void finished(String module, int done, int total, double relativeError) {
            if (terminal) {
                draw(module, done, total, relativeError);
            } else {
                out.printf(Locale.ROOT, "%d/%d %s relative error %.4f%n", done, total, module, relativeError);
            }
        }

        private void draw(String module, int done, int total, double relativeError) {
            int filled = WIDTH * done / Math.max(total, 1);
            out.printf(Locale.ROOT, "\r%d/%d [%s] %s relative error %.4f %.0f s ", done, total,
                    "=".repeat(filled) + " ".repeat(WIDTH - filled), module, relativeError, (System.nanoTime() - start) / 1e9);
            out.flush();
        }

        @Override
        public void tuned(int layer, int epoch, double loss) {
            if (!terminal) {
                out.printf(Locale.ROOT, "layer %d fine-tune epoch %d: mean squared error %.6g%n", layer, epoch + 1, loss);
            }
        }
    }
}
