package io.qlora4j.trainer.cli;

import io.qlora4j.model.checkpoint.CheckpointQuantizer;
import io.qlora4j.quant.QuantType;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.nio.file.Path;
import java.util.Locale;
import picocli.CommandLine.Command;

/** {@code qlora4j quantize}: writes the bitsandbytes NF4/FP4 checkpoint of a Hugging Face model directory. */
@Command(name = "quantize", description = {
    "Quantize every linear weight under model.layers.* to 4 bits, as transformers + bitsandbytes save it.",
    "Keys: model_name_or_path, export_dir, quantization_bit=4, quantization_type=nf4|fp4,",
    "double_quantization=true|false, quantization_blocksize=64, export_size=5 (GB per shard)."})
final class QuantizeCommand extends JobCommand {
    @Override
    int run(JobConfig config) throws Exception {
        Path source = Path.of(config.require("model_name_or_path"));
        Path target = Path.of(config.require("export_dir"));
        if (config.integer("quantization_bit") == null) {
            throw new ConfigException("quantize needs quantization_bit=4");
        }
        CheckpointQuantizer quantizer = CheckpointQuantizer.builder()
                .optType(QuantType.fromName(config.string("quantization_type")))
                .optDoubleQuant(config.bool("double_quantization"))
                .optBlocksize(config.integer("quantization_blocksize"))
                .optMaxShardBytes(config.integer("export_size") * 1_000_000_000L)
                .build();
        CheckpointQuantizer.Report r = quantizer.quantize(source, target);
        String format = config.string("quantization_type").toUpperCase(Locale.ROOT)
                + (config.bool("double_quantization") ? "+DQ" : "");
        out().printf(Locale.ROOT,
                "quantized %d of %d tensors (%,d parameters) to %s: %s -> %s, %.3f bits per quantized parameter%n"
                        + "wrote %s%n",
                r.quantizedTensors(), r.tensors(), r.quantizedParameters(), format, Sizes.human(r.bytesBefore()),
                Sizes.human(r.bytesAfter()), r.bitsPerParameter(), target);
        return 0;
    }
}
