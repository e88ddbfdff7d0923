package io.qlora4j.trainer.cli;

import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.CvxqFormat;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.family.ModelFamilies;
import io.qlora4j.trainer.JobModels;
import io.qlora4j.trainer.QloraMemoryEstimate;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import io.qlora4j.trainer.cvxq.CvxqSize;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.Locale;
import picocli.CommandLine.Command;

/** {@code qlora4j inspect}: a model's architecture, stored format, size and the memory a QLoRA run of it needs. */
@Command(name = "inspect", description = {
    "Print a model's architecture, how its weights are stored, parameter count and the memory a QLoRA run needs.",
    "Keys: model_name_or_path, quantization_method/quantization_bit and the format's options (the base format of",
    "the run; default: the checkpoint's own when pre-quantized, else NF4+DQ), lora_rank (default 8), cutoff_len",
    "(sequence length, default 2048), per_device_train_batch_size (default 1); target_bits or target_size_gb (with",
    "cvxq_group_size): the CVXQ base of that target and the QLoRA run over it."})
final class InspectCommand extends JobCommand {
    @Override
    int run(JobConfig config) throws Exception {
        Path dir = Path.of(config.require("model_name_or_path"));
        DecoderConfig c = ModelFamilies.read(dir.resolve("config.json"));
        BaseFormat stored = BaseFormats.stored(dir);
        BaseFormat format = BaseFormats.forModel(dir, JobModels.format(config));
        if (format == BaseFormats.DENSE) {
            format = BaseFormats.QLORA;
        }
        int rank = config.integer("lora_rank");
        int seq = config.integer("cutoff_len");
        int batch = config.integer("per_device_train_batch_size");
        PrintWriter out = out();
        out.printf(Locale.ROOT, "%s: %s, %d layers, hidden %d, MLP %d, %d heads (%d key/value, head_dim %d), vocab %d%s%n",
                dir, c.modelType(), c.numHiddenLayers(), c.hiddenSize(), c.intermediateSize(), c.numAttentionHeads(),
                c.numKeyValueHeads(), c.headDim(), c.vocabSize(), c.tieWordEmbeddings() ? ", tied embeddings" : "");
        out.printf(Locale.ROOT, "rope: theta %s, scaling %s; max positions %d%n", c.ropeTheta(),
                c.ropeScaling() == null ? "none" : c.ropeScaling(), c.maxPositionEmbeddings());
        out.printf(Locale.ROOT, "stored: %s%n", stored != null ? "linear layers in " + stored.describe()
                + " (quantization_config)" : (c.torchDtype() == null ? "float" : c.torchDtype())
                        + " weights, no quantization_config");
        for (int bytes : new int[] {4, 2}) {
            QloraMemoryEstimate e;
            try {
                e = QloraMemoryEstimate.of(c, format, rank, seq, batch, bytes);
            } catch (IllegalArgumentException tooLarge) {
                throw new ConfigException("per_device_train_batch_size x cutoff_len: " + tooLarge.getMessage());
            }
            if (bytes == 4) {
                out.printf(Locale.ROOT, "parameters: %,d (%,d in quantizable linear layers); 16-bit checkpoint %s%n",
                        e.parameters(), e.linearParameters(), Sizes.human(e.parameters() * 2));
                out.printf(Locale.ROOT, "QLoRA over a %s base (%.3f bits per linear parameter), LoRA r=%d on all linear"
                        + " layers (%,d parameters), batch %d x %d tokens, gradient checkpointing:%n", format.describe(),
                        e.baseBytes() * 8.0 / e.linearParameters(), rank, e.loraParameters(), batch, seq);
            }
            printEstimate(out, e, bytes);
        }
        cvxqTarget(config, c, rank, seq, batch, out);
        out.println("linear layers in each base format:");
        for (BaseFormat f : BaseFormats.menu()) {
            QloraMemoryEstimate e = QloraMemoryEstimate.of(c, f, rank, seq, batch, 4);
            out.printf(Locale.ROOT, "  %-40s %6.3f bits per parameter  %s%n", f.describe(),
                    e.baseBytes() * 8.0 / e.linearParameters(), Sizes.human(e.baseBytes()));
        }
        return 0;
    }

    private static void printEstimate(PrintWriter out, QloraMemoryEstimate e, int computeBytes) {
        out.printf(Locale.ROOT, "  %s compute: base %s + dense embeddings/norms/lm_head %s + LoRA with grads "
                + "and AdamW %s + activations %s = %s%n", computeBytes == 4 ? "float32" : "float16 (CUDA)",
                Sizes.human(e.baseBytes()), Sizes.human(e.denseBytes()), Sizes.human(e.loraBytes()),
                Sizes.human(e.activationBytes()), Sizes.human(e.totalBytes()));
    }

    /** With target_bits or target_size_gb: the CVXQ base that target gives and the QLoRA run over it. */
    private static void cvxqTarget(JobConfig config, DecoderConfig c, int rank, int seq, int batch, PrintWriter out)
            throws ConfigException {
        Double bits = config.number("target_bits");
        Double size = config.number("target_size_gb");
        if (bits == null && size == null) {
            return;
        }
        if (bits == null) {
            try {
                bits = CvxqSize.bitsFor(c, size * 1e9);
            } catch (IllegalArgumentException e) {
                throw new ConfigException(e.getMessage());
            }
        }
        int groupSize = config.integer("cvxq_group_size");
        out.printf(Locale.ROOT, "CVXQ target: %.4f bits per linear parameter%s, stored model %s; QLoRA over it:%n",
                bits, size == null ? "" : " (the most that fits target_size_gb " + size + ")",
                Sizes.human(CvxqSize.storedBytes(c, bits)));
        for (int bytes : new int[] {4, 2}) {
            QloraMemoryEstimate e = QloraMemoryEstimate.of(c, new CvxqFormat(bits, groupSize), rank, seq, batch, bytes);
            printEstimate(out, CvxqSize.qlora(e, c, bits, groupSize), bytes);
        }
    }
}
