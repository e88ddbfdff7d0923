package io.qlora4j.trainer.cli;

import ai.djl.Device;
import ai.djl.engine.Engine;
import ai.djl.ndarray.NDManager;
import io.qlora4j.adapters.MergeBase;
import io.qlora4j.adapters.MergeCheck;
import io.qlora4j.adapters.MergedExport;
import io.qlora4j.data.TemplateExport;
import io.qlora4j.data.TemplateTokenizer;
import io.qlora4j.model.Tokenizer;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.safetensors.DType;
import io.qlora4j.trainer.JobModels;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.io.PrintWriter;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Locale;
import picocli.CommandLine.Command;

/** {@code qlora4j export}: merges LoRA adapters into the base model and writes a Hugging Face checkpoint. */
@Command(name = "export", description = {
    "Merge LoRA adapters into the base model and write sharded safetensors, config, tokenizer files and a model card.",
    "The tokenizer files are as the job's template fixes them, beside an Ollama Modelfile (LLaMA-Factory's export).",
    "Keys: model_name_or_path, adapter_name_or_path (comma list, merged in order; none: the base decoded from its",
    "stored format, e.g. a CVXQ model's fake-quantized dense checkpoint), export_dir, export_size=5 (GB",
    "per shard), export_dtype=bfloat16|float16|float32, merge_base=original|dequantized (default: dequantized when",
    "the adapter records a quantized base, the checkpoint is pre-quantized or quantization_bit is set),",
    "quantization_method/quantization_bit and the format's options (the base format when the adapter records none;",
    "default NF4+DQ), export_quantization_bit/export_quantization_method (write the merged projections in that base",
    "format), export_device=cpu|auto, verify=true (prompt: one more text)."})
final class ExportCommand extends JobCommand {
    /** Texts the check runs besides the job's prompt: a few kinds of English a chat model sees. */
    private static final List<String> CHECK_TEXTS = List.of(
            "The quick brown fox jumps over the lazy dog.",
            "Below is an instruction that describes a task. Write a response that appropriately completes the request.",
            "def fibonacci(n):\n    return n if n < 2 else fibonacci(n - 1) + fibonacci(n - 2)");

    @Override
    boolean namesUnreadKeys() {
        return true;
    }

    @Override
    int run(JobConfig config) throws Exception {
        Path base = Path.of(config.require("model_name_or_path"));
        // no adapter: the base alone, decoded from its stored format (a CVXQ model's fake-quantized dense checkpoint)
        String adapterList = config.string("adapter_name_or_path");
        List<Path> adapters = adapterList == null ? List.of() : Arrays.stream(adapterList.split(","))
                .map(String::strip).filter(s -> !s.isEmpty()).map(Path::of).toList();
        Path target = Path.of(config.require("export_dir"));
        boolean verify = config.bool("verify");
        if (verify && adapters.size() != 1) {
            throw new ConfigException("verify: compares base + one adapter with the export, but " + adapters.size()
                    + " adapters are merged; verify them one at a time");
        }
        PrintWriter out = out();
        // the adapter's base when it records none: the job's format, by default QLoRA's 4 bits with the job's options
        Integer bits = config.integer("quantization_bit");
        BaseFormat trainedOn = JobModels.format(config, config.string("quantization_method"), bits == null ? 4 : bits);
        if (bits != null) {
            // a pre-quantized base is merged as stored: keys naming another format are refused, as train and eval do
            BaseFormats.forModel(base, trainedOn);
        }
        Device device = config.string("export_device").equals("cpu") ? Device.cpu() : Engine.getInstance().defaultDevice();
        MergedExport.Builder builder = MergedExport.builder(base, adapters)
                .optMergeBase(mergeBase(config))
                .optBaseQuantization(trainedOn)
                .optRequantize(JobModels.exportFormat(config))
                .optDtype(dtype(config.string("export_dtype")))
                .optMaxShardBytes(config.integer("export_size") * 1_000_000_000L)
                .optDevice(device);
        MergedExport export;
        // the tokenizer as the job's template fixes it, and an Ollama Modelfile, as LLaMA-Factory's export writes them
        try (TemplateTokenizer chat = Files.isRegularFile(base.resolve("tokenizer.json"))
                ? TemplateTokenizer.open(base) : null) {
            if (chat != null) {
                TemplateExport files = TemplateExport.of(config.string("template"), config.string("default_system"),
                        config.string("tool_format"), config.bool("enable_thinking"), chat, out::println);
                builder.optExtraFiles(files::writeTo);
            }
            export = builder.build();
        }
        out.printf("merging %d adapter%s into %s: merge_base %s%s%n", adapters.size(), adapters.size() == 1 ? "" : "s",
                base, export.mergeBase().jsonName(), export.baseQuantization() == null ? ""
                        : " (" + export.baseQuantization().describe() + ")");
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
