package io.qlora4j.trainer.cli;

import io.qlora4j.model.decoder.DecoderConfig;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.CvxqFormat;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.safetensors.SafetensorsReader;
import io.qlora4j.trainer.JobPlan;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import io.qlora4j.trainer.cvxq.CvxqSize;
import io.qlora4j.trainer.plan.ModelShape;
import io.qlora4j.trainer.plan.PlanReport;
import java.io.IOException;
import java.io.PrintWriter;
import java.nio.file.DirectoryStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Locale;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code qlora4j inspect}: a model's architecture, stored format and size, and the memory plan of the job's training
 * run: device and host memory part by part, and whether it fits {@code device_memory_gb} (or the GPU, or the
 * machine), with the settings that would make it fit when it does not. Only config.json is read.
 */
@Command(name = "inspect", description = {
    "Print a model's architecture, how its weights are stored, its parameter count and the plan of a training run.",
    "The memory plan reads the job keys as train reads them (base format, lora_rank/lora_target/use_dora, optim,",
    "paged_budget_mb, gradient_checkpointing, per_device_train_batch_size, cutoff_len, device, fp16) and says",
    "whether it fits device_memory_gb (default: the GPU's memory, or the machine's on a CPU). model_name_or_path may",
    "be a directory holding only config.json, or the config.json file itself. target_bits or target_size_gb (with",
    "cvxq_group_size): the CVXQ base of that target and the plan of the run over it."})
final class InspectCommand extends JobCommand {
    @Option(names = "--json", description = "End with one JSON line: device_bytes, host_bytes, fits, margin and parts.")
    boolean json;

    @Override
    int run(JobConfig config) throws Exception {
        Path path = Path.of(config.require("model_name_or_path"));
        JobPlan plan = JobPlan.of(config);
        DecoderConfig c = plan.model();
        BaseFormat stored = BaseFormats.stored(plan.modelDir());
        if (stored != null && hasWeights(plan.modelDir())) {
            try (SafetensorsReader reader = SafetensorsReader.open(plan.modelDir())) {
                ModelLoader.requireStoredProjection(c, reader, stored);
            }
        }
        ModelShape shape = ModelShape.of(c);
        PrintWriter out = out();
        out.printf(Locale.ROOT, "%s: %s, %d layers, hidden %d, MLP %d, %d heads (%d key/value, head_dim %d), vocab %d%s%n",
                path, c.modelType(), c.numHiddenLayers(), c.hiddenSize(), c.intermediateSize(), c.numAttentionHeads(),
                c.numKeyValueHeads(), c.headDim(), c.vocabSize(), c.tieWordEmbeddings() ? ", tied embeddings" : "");
        out.printf(Locale.ROOT, "rope: theta %s, scaling %s; max positions %d%n", c.ropeTheta(),
                c.ropeScaling() == null ? "none" : c.ropeScaling(), c.maxPositionEmbeddings());
        out.printf(Locale.ROOT, "stored: %s%n", stored != null ? "linear layers in " + stored.describe()
                + " (quantization_config)" : (c.torchDtype() == null ? "float" : c.torchDtype())
                        + " weights, no quantization_config");
        long linear = Math.multiplyExact(shape.blockLinearParameters(), shape.layers());
        out.printf(Locale.ROOT, "parameters: %,d (%,d in quantizable linear layers); 16-bit checkpoint %s%n",
                shape.parameters(), linear, Sizes.human(shape.parameters() * 2));
        PlanReport report = plan.report();
        report.print(out);
        out.println("linear layers in each base format:");
        for (BaseFormat f : BaseFormats.menu()) {
            long bytes = 0;
            for (ModelShape.Linear l : shape.linears()) {
                bytes += f.storedBytes(l.shape());
            }
            bytes *= shape.layers();
            out.printf(Locale.ROOT, "  %-40s %6.3f bits per parameter  %s%n", f.describe(), bytes * 8.0 / linear,
                    Sizes.human(bytes));
        }
        cvxqTarget(config, plan, out);
        if (json) {
            out.println(report.json());
        }
        return 0;
    }

    /** With target_bits or target_size_gb: the CVXQ base that target gives and the plan of the run over it. */
    private static void cvxqTarget(JobConfig config, JobPlan plan, PrintWriter out) throws ConfigException {
        DecoderConfig c = plan.model();
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
        CvxqFormat cvxq = new CvxqFormat(bits, config.integer("cvxq_group_size"));
        out.printf(Locale.ROOT, "CVXQ target: %.4f bits per linear parameter%s, stored model %s; the run over it: %s%n",
                bits, size == null ? "" : " (the most that fits target_size_gb " + size + ")",
                Sizes.human(CvxqSize.storedBytes(c, bits)),
                plan.report(b -> b.optFormat(cvxq)).verdict());
    }

    /** Whether {@code dir} holds weights (a safetensors file or index); inspect also plans from a config alone. */
    private static boolean hasWeights(Path dir) throws IOException {
        try (DirectoryStream<Path> files = Files.newDirectoryStream(dir, "*.safetensors*")) {
            return files.iterator().hasNext();
        }
    }
}
