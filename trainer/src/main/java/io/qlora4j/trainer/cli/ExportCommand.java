package io.qlora4j.trainer.cli;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import io.qlora4j.adapters.MergeBase;
import io.qlora4j.adapters.MergeCheck;
import io.qlora4j.adapters.MergedExport;
import io.qlora4j.adapters.QuantizedBase;
import io.qlora4j.model.Tokenizer;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.quant.QuantType;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.io.PrintWriter;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;

/** {@code qlora4j export}: merges LoRA adapters into the base model and writes a Hugging Face checkpoint. */
@Command(name = "export", description = {
    "Merge LoRA adapters into the base model and write sharded safetensors, config, tokenizer files and a model card.",
    "Keys: model_name_or_path, adapter_name_or_path (comma list, merged in order), export_dir, export_size=5 (GB",
    "per shard), export_dtype=bfloat16|float16|float32, merge_base=original|dequantized (default: dequantized when",
    "the adapter records a 4-bit base, the checkpoint is 4-bit or quantization_bit=4), export_quantization_bit=4",
    "(bitsandbytes 4-bit output), quantization_type, quantization_blocksize, double_quantization (the 4-bit format",
    "when the adapter records none, and of a 4-bit output), export_device=cpu|auto, verify=true (prompt: one more text)."})
final class ExportCommand extends JobCommand {
    /** Texts the check runs besides the job's prompt: a few kinds of English a chat model sees. */
    private static final List<String> CHECK_TEXTS = List.of(
            "The quick brown fox jumps over the lazy dog.",
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
            "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)");

    @Override
    int run(JobConfig config) throws Exception {
        Path base = Path.of(config.require("model_name_or_path"));
        List<Path> adapters = Arrays.stream(config.require("adapter_name_or_path").split(","))
                .map(String::strip).filter(s -> !s.isEmpty()).map(Path::of).toList();
        Path target = Path.of(config.require("export_dir"));
        boolean verify = config.bool("verify");
        if (verify && adapters.size() != 1) {
            throw new ConfigException("verify: compares base + one adapter with the export, but " + adapters.size()
                    + " adapters are merged; verify them one at a time");
        }
        PrintWriter out = out();
        if (config.isSet("template")) {
            err().println("warning: template is not applied by export; the tokenizer files are copied as they are");
        }
        QuantizedBase format = new QuantizedBase(QuantType.fromName(config.string("quantization_type")),
                config.integer("quantization_blocksize"), config.bool("double_quantization"));
        Device device = config.string("export_device").equals("cpu") ? Device.cpu() : Engine.getInstance().defaultDevice();
        MergedExport.Builder builder = MergedExport.builder(base, adapters)
                .optMergeBase(mergeBase(config))
                .optBaseQuantization(format)
                .optDtype(dtype(config.string("export_dtype")))
                .optMaxShardBytes(config.integer("export_size") * 1_000_000_000L)
                .optDevice(device);
        if (config.integer("export_quantization_bit") != null) {
            builder.optRequantize(format);
        }
        MergedExport export = builder.build();
        out.printf("merging %d adapter%s into %s: merge_base %s%s%n", adapters.size(), adapters.size() == 1 ? "" : "s",
                base, export.mergeBase().jsonName(), export.baseQuantization() == null ? ""
                        : " (" + export.baseQuantization() + ")");
        MergedExport.Report r = export.writeTo(target);
        out.printf(Locale.ROOT, "merged %d modules, wrote %d tensors (%s) in %.1f s (%.2f GB/s of base checkpoint)%n"
                        + "wrote %s%n", r.mergedModules(), r.tensors(), Sizes.human(r.bytesWritten()), r.seconds(),
                r.bytesPerSecond() / 1e9, target);
        if (verify) {
            MergeCheck.Result c;
            try (Tokenizer tokenizer = Tokenizer.load(base); NDManager manager = NDManager.newBaseManager(device)) {
                List<long[]> texts = new ArrayList<>();
                if (config.string("prompt") != null) {
                    texts.add(tokenizer.encode(config.string("prompt")));
                }
                CHECK_TEXTS.forEach(text -> texts.add(tokenizer.encode(text)));
                c = MergeCheck.compare(export, target, texts, manager);
            }
            out.printf(Locale.ROOT, "verify: %d texts, %d tokens: max |logit difference| %.3g (largest |logit| %.3g)"
                    + " between base + adapter and the export%n", c.texts(), c.tokens(), c.maxAbsDifference(),
                    c.maxAbsLogit());
        }
        return 0;
    }

    /** {@code merge_base} when set; dequantized when the job says the base is 4-bit; else the export decides. */
    private static MergeBase mergeBase(JobConfig config) {
        if (config.string("merge_base") != null) {
            return MergeBase.fromName(config.string("merge_base"));
        }
        return config.integer("quantization_bit") != null ? MergeBase.DEQUANTIZED : null;
    }

    private static DType dtype(String name) {
        return switch (name) {
            case "float32" -> DType.F32;
            case "float16" -> DType.F16;
            default -> DType.BF16;
        };
    }
}
