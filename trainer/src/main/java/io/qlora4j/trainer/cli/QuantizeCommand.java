package io.qlora4j.trainer.cli;

import io.qlora4j.model.checkpoint.CheckpointQuantizer;
import io.qlora4j.model.format.AqlmFormat;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.CvxqFormat;
import io.qlora4j.trainer.JobModels;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.nio.file.Path;
import java.util.Locale;
import picocli.CommandLine.Command;

/** {@code qlora4j quantize}: writes the quantized checkpoint of a Hugging Face model directory in a base format. */
@Command(name = "quantize", description = {
    "Quantize every linear weight under model.layers.* into a base format, as transformers saves it.",
    "Keys: model_name_or_path, export_dir, quantization_bit, quantization_method (bnb), the format's options",
    "(bnb 4-bit: quantization_type=nf4|fp4, double_quantization, quantization_blocksize), export_size=5 (GB per shard).",
    "CVXQ (mixed precision from calibration): quantization_method=cvxq, target_bits=B or target_size_gb=S, dataset=FILE",
    "(.jsonl text or .txt), max_samples=128, cutoff_len=2048, cvxq_group_size=256, cvxq_iterations=1024,",
    "cvxq_bias_correction=all|declarable, cvxq_validation=FILE (keep the quantization with the lowest validation",
    "perplexity, checked every cvxq_valid_size=64 sequences and at the end).",
    "AQLM: quantization_method=aqlm num_codebooks=K nbits_per_codebook=N in_group_size=G dataset=FILE (.txt or .jsonl",
    "text) cutoff_len (window length) seed, and the aqlm_* keys (beam size, epochs, tolerance, fine-tune)."})
final class QuantizeCommand extends JobCommand {
    @Override
    boolean namesUnreadKeys() {
        return true;
    }

    @Override
    int run(JobConfig config) throws Exception {
        if (CvxqFormat.METHOD.equalsIgnoreCase(config.string("quantization_method"))) {
            return CvxqQuantizeJob.run(config, out());
        }
        Path source = Path.of(config.require("model_name_or_path"));
        Path target = Path.of(config.require("export_dir"));
        String method = config.string("quantization_method");
        if (method != null && method.trim().equalsIgnoreCase("aqlm")) {
            // AQLM learns codebooks from calibration data: its own pipeline, not a tensor-by-tensor conversion
            AqlmFormat aqlm = (AqlmFormat) JobModels.format(config, "aqlm", 2);
            AqlmQuantizeRun.run(config, aqlm.scheme(), source, target, out(), System.console() != null);
            return 0;
        }
        BaseFormat format = JobModels.written(JobModels.format(config));
        if (format == BaseFormats.DENSE) {
            throw new ConfigException("quantize needs quantization_bit (and quantization_method), e.g. quantization_bit=4");
        }
        CheckpointQuantizer.Report r = CheckpointQuantizer.builder(format)
                .optMaxShardBytes(config.integer("export_size") * 1_000_000_000L)
                .build()
                .quantize(source, target);
        out().printf(Locale.ROOT,
                "quantized %d of %d tensors (%,d parameters) to %s: %s -> %s, %.3f bits per quantized parameter%n"
                        + "wrote %s%n",
                r.quantizedTensors(), r.tensors(), r.quantizedParameters(), format.describe(),
                Sizes.human(r.bytesBefore()), Sizes.human(r.bytesAfter()), r.bitsPerParameter(), target);
        return 0;
    }
}
