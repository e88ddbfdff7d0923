package io.qlora4j.trainer;

import ai.djl.ndarray.types.DataType;
import io.qlora4j.model.BaseRewrite;
import io.qlora4j.model.ComputeTarget;
import io.qlora4j.model.ModelException;
import io.qlora4j.model.format.BaseFormat;
import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.CvxqFormat;
import io.qlora4j.model.format.FormatKeys;
import io.qlora4j.model.format.FormatOption;
import io.qlora4j.model.family.ModelLoader;
import io.qlora4j.model.generation.RepetitionPenalty;
import io.qlora4j.trainer.config.ConfigException;
import io.qlora4j.trainer.config.JobConfig;
import java.nio.file.Path;
import java.util.LinkedHashMap;
import java.util.Map;
import java.util.function.Consumer;

/**
 * How a job's keys choose the compute target, the base format and the base-model loader, for every command that
 * runs or writes a model: the one place where {@code quantization_method}, {@code quantization_bit} and the formats'
 * options become a {@link BaseFormat}.
 */
public final class JobModels {
    private JobModels() {}

    /** The environment variable through which libtorch multiplies float32 on CUDA in TF32 (read at its start). */
    static final String TF32_OVERRIDE = "TORCH_ALLOW_TF32_CUBLAS_OVERRIDE";

    /**
     * The target from {@code device} ({@code cpu} when {@code use_cpu} or its old name {@code no_cuda} is set),
     * {@code bf16} and {@code fp16}; each warning line goes to {@code warn}. A {@code tf32} setting is checked
     * against this process's TF32 mode ({@link #checkTf32}).
     */
    public static ComputeTarget target(JobConfig config, Consumer<String> warn) throws ModelException {
        String device = config.bool("use_cpu") || config.bool("no_cuda") ? "cpu" : config.string("device");
        ComputeTarget target = ComputeTarget.resolve(device, config.bool("bf16"), config.bool("fp16"), warn);
        if (config.isSet("tf32")) {
            checkTf32(config.bool("tf32"), target, System.getenv(TF32_OVERRIDE), warn);
        }
        return target;
    }

    /**
     * transformers' {@code tf32} switches TF32 float32 matmuls on CUDA on or off in the process; DJL 0.36 has no such
     * switch, and libtorch takes the mode from {@code TORCH_ALLOW_TF32_CUBLAS_OVERRIDE} once at its start (the
     * launcher sets it to 1 unless it is set). So a {@code tf32} that disagrees with the variable ({@code override},
     * null when unset) on a float32 CUDA target is refused rather than ignored; a float16 target multiplies in
     * float16 either way, and on a CPU it is a warning (transformers refuses {@code tf32: true} without a GPU).
     */
    static void checkTf32(boolean tf32, ComputeTarget target, String override, Consumer<String> warn)
            throws ModelException {
        if (!target.device().isGpu()) {
            if (tf32) {
                warn.accept("tf32: TensorFloat-32 is a CUDA matmul mode; the CPU computes in float32");
            }
            return;
        }
        boolean on = "1".equals(override);
        if (target.dataType() == DataType.FLOAT32 && tf32 != on) {
            throw new ModelException("tf32: " + tf32 + ", but this process multiplies float32 "
                    + (on ? "in" : "without") + " TF32 (" + TF32_OVERRIDE + "=" + (override == null ? "unset" : override) + ", read by libtorch"
                    + " at its start); run with " + TF32_OVERRIDE + "=" + (tf32 ? 1 : 0)
                    + (tf32 ? "" : " (the launcher sets 1 unless it is set)"));
        }
    }

    /**
     * The base format the job asks for: {@code quantization_method} and {@code quantization_bit} with the formats'
     * options (dense without {@code quantization_bit}).
     *
     * @throws ModelException naming the key when the method or bit width is not implemented
     */
    public static BaseFormat format(JobConfig config) throws ModelException {
        return format(config, config.string("quantization_method"), config.integer("quantization_bit"));
    }

    /**
     * The format {@code export} writes the merged projections in: {@code export_quantization_method} and
     * {@code export_quantization_bit} with the options of {@link #format}; dense without
     * {@code export_quantization_bit}. The bits alone are refused: in LLaMA-Factory they ask for a GPTQ export
     * calibrated on {@code export_quantization_dataset}, which qlora4j does not write, and the same key must not
     * silently mean another format. The method alone is refused too: without bits it chose nothing, and the dense
     * model was written as though it had not been set.
     *
     * @throws ModelException naming the key at fault
     */
    public static BaseFormat exportFormat(JobConfig config) throws ModelException {
        String method = config.string("export_quantization_method");
        Integer bits = config.integer("export_quantization_bit");
        if (method == null && bits != null) {
            throw new ModelException("export_quantization_bit: LLaMA-Factory exports a GPTQ model calibrated on"
                    + " export_quantization_dataset, which qlora4j does not write; add export_quantization_method ("
                    + String.join(", ", BaseFormats.methods()) + ") to write the merged model in one of qlora4j's"
                    + " formats");
        }
        BaseFormat format = format(config, method != null ? method : config.string("quantization_method"), bits);
        if (method != null && bits == null) {
            throw new ModelException("export_quantization_method: " + method + " needs export_quantization_bit, the"
                    + " bits of the format to write the merged model in; leave both out to write it dense");
        }
        return written(format);
    }

    /**
     * {@code format}, when qlora4j writes checkpoints in it ({@link BaseFormats#checkpointRefusal}): what
     * {@code quantize} and {@code export} call before any work.
     *
     * @throws ModelException the format's one-line reason otherwise
     */
    public static BaseFormat written(BaseFormat format) throws ModelException {
        String refusal = BaseFormats.checkpointRefusal(format);
        if (refusal != null) {
            throw new ModelException(refusal);
        }
        return format;
    }

    /**
     * The format {@code method} and {@code bits} choose with the job's option values; the way a command that needs a
     * quantized format when the job gives no bit width asks for a default one.
     */
    public static BaseFormat format(JobConfig config, String method, Integer bits) throws ModelException {
        if (CvxqFormat.METHOD.equalsIgnoreCase(method)) {
            throw new ModelException(CvxqFormat.onTheFly());
        }
        Map<String, Object> options = new LinkedHashMap<>();
        for (FormatOption o : BaseFormats.options()) {
            options.put(o.name(), config.string(o.name()));
        }
        return BaseFormats.fromKeys(new FormatKeys(method, bits, options));
    }

    /**
     * A loader that converts the block linears to the job's {@link #format} (a pre-quantized checkpoint keeps its
     * own); {@code finetuning_type: full} trains embed_tokens and lm_head, so it keeps them float32. The model
     * computes in {@code computeType} (a {@link ComputeTarget}'s), the base projections {@code rewrite} chooses (or
     * none) are rewritten, and the load's warning lines go to {@code warn}.
     */
    public static ModelLoader loader(JobConfig config, DataType computeType, BaseRewrite rewrite,
            Consumer<String> warn) throws ModelException {
        return ModelLoader.builder()
                .optFloat32Embeddings(config.string("finetuning_type").equals("full"))
                .optComputeType(computeType)
                .optFormat(format(config))
                .optBaseRewrite(rewrite)
                .optWarnings(warn)
                .build();
    }

    /**
     * Warns when sequences can reach positions the model was never pre-trained on: {@code cutoff_len} set above the
     * model's {@code max_position_embeddings}, or a sequence ({@code longest} tokens) longer than it.
     *
     * @param configJson the config.json that gives {@code maxPositions}, named in the warning
     */
    public static void warnPastPositions(JobConfig config, int maxPositions, Path configJson, int longest,
            Consumer<String> warn) {
        int cutoff = config.integer("cutoff_len");
        if ((config.isSet("cutoff_len") && cutoff > maxPositions) || longest > maxPositions) {
            warn.accept("cutoff_len " + cutoff + " is above the model's max_position_embeddings " + maxPositions + " ("
                    + configJson + "), and the longest sequence has " + longest + " tokens: positions past "
                    + maxPositions + " were never pre-trained");
        }
    }

    /**
     * The job's {@code repetition_penalty}, as {@code generate} and {@code predict_with_generate} apply it.
     *
     * @throws ConfigException for a penalty that is not above 0
     */
    public static RepetitionPenalty repetitionPenalty(JobConfig config) throws ConfigException {
        double penalty = config.number("repetition_penalty");
        if (!(penalty > 0)) {
            throw new ConfigException("repetition_penalty: " + penalty + " is out of range (allowed: above 0; 1 for"
                    + " none)");
        }
        return new RepetitionPenalty(penalty);
    }
}
