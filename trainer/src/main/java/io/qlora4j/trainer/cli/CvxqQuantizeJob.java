package io.qlora4j.trainer.cli;

import ai.djl.ndarray.NDManager;
import io.qlora4j.model.Tokenizer;
import io.qlora4j.model.format.CvxqFormat;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.decoder.CausalLM;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import io.qlora4j.trainer.cvxq.CalibrationTexts;
import io.qlora4j.trainer.cvxq.CvxqCalibration;
import io.qlora4j.trainer.cvxq.CvxqCheckpoint;
import io.qlora4j.trainer.cvxq.CvxqSettings;
import io.qlora4j.trainer.cvxq.CvxqSize;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;

/**
 * {@code quantize quantization_method=cvxq}: CVXQ calibration on a text file and the CVXQ checkpoint of the result.
 * The size target is {@code target_bits} (stored bits per projection parameter, 0 to 8) or {@code target_size_gb}
 * (the whole stored model); calibration takes the first {@code max_samples} (default 128) texts of at least
 * {@code cutoff_len} tokens (default 2048, at most the model's positions), as the reference does. Every registered
 * family is quantized; {@code cvxq_bias_correction} ({@code all} or {@code declarable}) chooses which projections'
 * biases are corrected ({@link CvxqSettings.BiasCorrection}). With {@code cvxq_validation} (a text file: the
 * reference's C4 validation texts, up to 256 of {@code cutoff_len} tokens) the quantization with the lowest
 * validation perplexity among those every {@code cvxq_valid_size} (default 64) sequences and the last is written.
 * With {@code --debug} it prints the process's memory as each phase ends (start, model load, principal directions,
 * calibration passes, final quantization, checkpoint write).
 */
final class CvxqQuantizeJob {
    private CvxqQuantizeJob() {}

    static int run(JobConfig config, PrintWriter out) throws Exception {
        Path source = Path.of(config.require("model_name_or_path"));
        Path target = Path.of(config.require("export_dir"));
        Path dataset = Path.of(config.require("dataset"));
        DecoderConfig model = ModelFamilies.read(source.resolve("config.json"));
        double bits = targetBits(config, model);
        int length = Math.min(config.integer("cutoff_len"), model.maxPositionEmbeddings());
        Integer samples = config.integer("max_samples");
        CvxqSettings settings;
        try {
            settings = CvxqSettings.defaults(bits).withGroupSize(config.integer("cvxq_group_size"))
                    .withIterations(config.integer("cvxq_iterations"))
                    .withBiasCorrection(CvxqSettings.BiasCorrection.of(config.string("cvxq_bias_correction")))
                    .withValidSize(config.integer("cvxq_valid_size"));
        } catch (IllegalArgumentException e) {
            throw new ConfigException(e.getMessage());
        }
        long start = System.nanoTime();
        try (NDManager manager = NDManager.newBaseManager(); Tokenizer tokenizer = Tokenizer.load(source)) {
            memory(out, "start");
            List<long[]> sequences;
            List<long[]> validation = List.of();
            try {
                sequences = CalibrationTexts.read(dataset, tokenizer,
                        samples == null ? CvxqSettings.SEQUENCES : samples, length);
            } catch (IllegalArgumentException e) {
                throw new ConfigException("dataset: " + e.getMessage());
            }
            if (config.string("cvxq_validation") != null) {
                try {
                    validation = CalibrationTexts.read(Path.of(config.string("cvxq_validation")), tokenizer,
                            CvxqSettings.VALIDATION_SEQUENCES, length);
                } catch (IllegalArgumentException e) {
                    throw new ConfigException("cvxq_validation: " + e.getMessage());
                }
            }
            out.printf(Locale.ROOT, "calibrating on %d sequences of %d tokens, %d iterations, target %.4f bits per"
                    + " parameter%n", sequences.size(), length, settings.iterations(), bits);
            out.flush();
            CvxqCalibration.Result result;
            try (CausalLM dense = ModelLoader.builder().optFloat16Projections(true).build()
                    .load(source, manager)) {
                memory(out, "model load");
                result = CvxqCalibration.run(dense, sequences, validation, settings, new CvxqCalibration.Log() {
                    @Override
                    public void line(String line) {
                        out.println(line);
                        out.flush();
                    }

                    @Override
                    public void phaseEnded(String phase) {
                        memory(out, phase);
                    }
                });
            } catch (IllegalArgumentException e) {
                throw new ConfigException(e.getMessage());
            }
            long bytes = CvxqCheckpoint.write(source, target, result, settings.groupSize(),
                    config.integer("export_size") * 1_000_000_000L);
            memory(out, "checkpoint write");
            out.printf(Locale.ROOT, "quantized %d projections to %s: %.4f bits per parameter (side information and"
                    + " biases included), %s written in %.1f s over %,d calibration tokens%nwrote %s%n",
                    result.layers().size(), new CvxqFormat(result.bitsPerParameter(), settings.groupSize()).describe(),
                    result.bitsPerParameter(), Sizes.human(bytes), (System.nanoTime() - start) / 1e9, result.tokens(),
                    target);
            if (!validation.isEmpty()) {
                out.printf(Locale.ROOT, "selected the quantization after sequence %d: validation perplexity %.4f%n",
                        result.selectedAt(), result.validationPerplexity());
            }
        }
        return 0;
    }

    /** With {@code --debug}: the process's memory as a phase ends (the peak lies in the phase whose end raises it). */
    private static void memory(PrintWriter out, String phase) {
        if (Main.debug()) {
            out.println("memory after " + phase + ": " + ProcessMemory.describe());
            out.flush();
        }
    }

    /** {@code target_bits}, or the bits {@code target_size_gb} leaves the projections; exactly one must be given. */
    private static double targetBits(JobConfig config, DecoderConfig model) throws ConfigException {
        Double bits = config.number("target_bits");
        Double size = config.number("target_size_gb");
        if ((bits == null) == (size == null)) {
            throw new ConfigException("quantization_method cvxq needs exactly one of target_bits (bits per parameter,"
                    + " 0 to 8) and target_size_gb");
        }
        if (bits != null) {
            return bits;
        }
        try {
            return CvxqSize.bitsFor(model, size * 1e9);
        } catch (IllegalArgumentException e) {
            throw new ConfigException(e.getMessage());
        }
    }
}
