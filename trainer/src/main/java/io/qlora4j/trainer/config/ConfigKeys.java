package io.qlora4j.trainer.config;

import static io.qlora4j.trainer.config.ConfigKey.Type.BOOL;
import static io.qlora4j.trainer.config.ConfigKey.Type.FLOAT;
import static io.qlora4j.trainer.config.ConfigKey.Type.INT;
import static io.qlora4j.trainer.config.ConfigKey.Type.LIST;
import static io.qlora4j.trainer.config.ConfigKey.Type.STRING;

import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.FormatOption;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every key a qlora4j job may set: LLaMA-Factory's names and defaults (shared/reference/FORMATS.md
 * section 9), qlora4j's own additions, and the axolotl aliases users bring along.
 */
public final class ConfigKeys {
    private static final double NO_LIMIT = Double.MAX_VALUE;

    private static final Map<String, ConfigKey> KEYS = new LinkedHashMap<>();

    static {
        // model
        add(ConfigKey.of("model_name_or_path", STRING, null, "Hugging Face model directory"));
        add(ConfigKey.of("adapter_name_or_path", LIST, null, "PEFT adapter directory (comma list)"));
        // the base format: methods and options from the format registry; a method's bit widths are checked there
        add(ConfigKey.of("quantization_bit", INT, null, "bits of the frozen base weights (per method)").range(1.0, 8.0));
        add(ConfigKey.of("quantization_method", STRING, "bnb", "base-weight format")
                .choices(BaseFormats.methods().toArray(String[]::new))
                .planned(BaseFormats.plannedMethods().toArray(String[]::new)));
        BaseFormats.options().forEach(o -> add(formatOption(o)));
        add(ConfigKey.of("target_bits", FLOAT, null, "CVXQ: stored bits per parameter of the block projections")
                .range(0.0, 8.0));
        add(ConfigKey.of("target_size_gb", FLOAT, null, "CVXQ: size of the whole quantized model in GB (1e9 bytes)")
                .range(0.0, NO_LIMIT));
        add(ConfigKey.of("cvxq_group_size", INT, 256, "CVXQ: rows per cluster").range(1.0, NO_LIMIT));
        add(ConfigKey.of("cvxq_iterations", INT, 1024, "CVXQ: calibration sequences processed (cycling over the data)")
                .range(1.0, NO_LIMIT));
        add(ConfigKey.of("rope_scaling", STRING, null, "override the model's RoPE scaling")
                .notImplemented("set rope_scaling in the model's config.json instead"));
        add(ConfigKey.of("infer_dtype", STRING, "auto", "dtype for inference").choices("auto", "float32", "float16")
                .notImplemented("eval and generate compute in the dtype that device and fp16 choose"));
        add(ConfigKey.of("device", STRING, "auto", "compute device").choices("auto", "cpu", "cuda"));
        add(ConfigKey.of("trust_remote_code", BOOL, false, "accepted for compatibility; qlora4j runs no Python"));
        // method
        add(ConfigKey.of("stage", STRING, "sft", "training stage").choices("sft", "pt"));
        add(ConfigKey.of("do_train", BOOL, true, "train (true) or only evaluate"));
        add(ConfigKey.of("finetuning_type", STRING, "lora", "what is trained").choices("lora", "full").planned("freeze"));
        add(ConfigKey.of("lora_rank", INT, 8, "LoRA rank r").range(1.0, 65536.0));
        add(ConfigKey.of("lora_alpha", FLOAT, null, "LoRA alpha (default 2 x lora_rank)").range(0.0, NO_LIMIT));
        add(ConfigKey.of("lora_dropout", FLOAT, 0.0, "dropout on the LoRA input").range(0.0, 0.999));
        add(ConfigKey.of("lora_target", LIST, "all", "'all' or a comma list of module names"));
        add(ConfigKey.of("use_rslora", BOOL, false, "scale by alpha / sqrt(r)"));
        add(ConfigKey.of("use_dora", BOOL, false, "weight-decomposed LoRA (DoRA): a trained magnitude per output row"));
        add(ConfigKey.of("loraplus_lr_ratio", FLOAT, null, "LoRA+: learning rate of B (and DoRA's magnitude) over A's")
                .range(0.0, NO_LIMIT));
        add(ConfigKey.of("pissa_init", BOOL, false, "start the adapter from the base's principal singular vectors (PiSSA)"));
        add(ConfigKey.of("pissa_iter", INT, 16, "power iterations of PiSSA's randomised SVD (-1: exact SVD)")
                .range(-1.0, NO_LIMIT));
        add(ConfigKey.of("pissa_convert", BOOL, false,
                "also write the PiSSA adapter as a LoRA on the original weights (pissa_converted/)"));
        add(ConfigKey.of("loftq_init", BOOL, false, "start from LoftQ: quantized residual base, its SVD as the adapter"));
        add(ConfigKey.of("loftq_iter", INT, 1, "LoftQ's alternating quantization and SVD iterations").range(1.0, NO_LIMIT));
        add(ConfigKey.of("loftq_bits", INT, null, "LoftQ's quantization bits (default the base's, else 4)")
                .choices("4", "8"));
        add(ConfigKey.of("loraplus_lr_embedding", FLOAT, 1e-6,
                "LoRA+: learning rate of embedding adapters' B (qlora4j adapts no embeddings, so none takes it)")
                .range(0.0, NO_LIMIT));
        // dataset
        add(ConfigKey.of("dataset", LIST, null, "dataset names or files (comma list)"));
        add(ConfigKey.of("dataset_dir", STRING, "data", "folder holding dataset_info.json"));
        add(ConfigKey.of("template", STRING, "default", "chat template"));
        add(ConfigKey.of("cutoff_len", INT, 2048, "maximum tokens per example").range(1.0, NO_LIMIT));
        add(ConfigKey.of("max_samples", INT, null, "use at most this many records per dataset").range(1.0, NO_LIMIT));
        add(ConfigKey.of("val_size", FLOAT, 0.0, "held-out fraction (< 1) or count (>= 1)").range(0.0, NO_LIMIT));
        add(ConfigKey.of("packing", BOOL, false, "pack examples into cutoff_len sequences"));
        add(ConfigKey.of("train_on_prompt", BOOL, false, "also train on prompt tokens"));
        add(ConfigKey.of("mask_history", BOOL, false, "train only on the last turn"));
        add(ConfigKey.of("group_by_length", BOOL, false, "batch examples of similar length"));
        add(ConfigKey.of("preprocessing_num_workers", INT, null, "accepted for compatibility").range(1.0, NO_LIMIT));
        add(ConfigKey.of("overwrite_cache", BOOL, false, "accepted for compatibility"));
        // output
        add(ConfigKey.of("output_dir", STRING, null, "where checkpoints and the adapter go"));
        add(ConfigKey.of("logging_steps", INT, 10, "log every N optimizer steps").range(1.0, NO_LIMIT));
        add(ConfigKey.of("save_steps", INT, 500, "checkpoint every N optimizer steps").range(1.0, NO_LIMIT));
        add(ConfigKey.of("save_total_limit", INT, null, "keep at most N checkpoints").range(1.0, NO_LIMIT));
        add(ConfigKey.of("plot_loss", BOOL, false, "draw training_loss.png"));
        add(ConfigKey.of("overwrite_output_dir", BOOL, false, "allow a non-empty output_dir"));
        add(ConfigKey.of("report_to", STRING, "none", "experiment tracker").choices("none"));
        // train
        add(ConfigKey.of("per_device_train_batch_size", INT, 1, "examples per micro-batch").range(1.0, NO_LIMIT));
        add(ConfigKey.of("gradient_accumulation_steps", INT, 1, "micro-batches per optimizer step").range(1.0, NO_LIMIT));
        add(ConfigKey.of("learning_rate", FLOAT, 5e-5, "peak learning rate").range(0.0, NO_LIMIT));
        add(ConfigKey.of("num_train_epochs", FLOAT, 3.0, "epochs when max_steps is not set").range(0.0, NO_LIMIT));
        add(ConfigKey.of("max_steps", INT, -1, "optimizer steps (-1: from num_train_epochs)").range(-1.0, NO_LIMIT));
        add(ConfigKey.of("lr_scheduler_type", STRING, "linear", "learning-rate schedule")
                .choices("linear", "cosine", "constant", "constant_with_warmup"));
        add(ConfigKey.of("warmup_ratio", FLOAT, 0.0, "warm-up fraction of the steps").range(0.0, 1.0));
        add(ConfigKey.of("warmup_steps", INT, 0, "warm-up steps (wins over warmup_ratio)").range(0.0, NO_LIMIT));
        add(ConfigKey.of("weight_decay", FLOAT, 0.0, "decoupled weight decay").range(0.0, NO_LIMIT));
        add(ConfigKey.of("adam_beta1", FLOAT, 0.9, "AdamW beta1").range(0.0, 0.999999));
        add(ConfigKey.of("adam_beta2", FLOAT, 0.999, "AdamW beta2").range(0.0, 0.999999999));
        add(ConfigKey.of("adam_epsilon", FLOAT, 1e-8, "AdamW epsilon").range(0.0, NO_LIMIT));
        add(ConfigKey.of("max_grad_norm", FLOAT, 1.0, "global gradient-norm clip (0: off)").range(0.0, NO_LIMIT));
        add(ConfigKey.of("optim", STRING, "adamw_torch", "optimizer")
                .choices("adamw_torch", "paged_adamw_32bit", "paged_adamw_8bit", "adamw_8bit"));
        add(ConfigKey.of("paged_budget_mb", FLOAT, null,
                "device budget of the paged optimizer state in MiB (default: CUDA's free memory less a margin;"
                        + " unlimited on the CPU)").range(0.0, NO_LIMIT));
        add(ConfigKey.of("paged_page_kb", INT, 1024, "size of one page of paged optimizer state in KiB")
                .range(1.0, NO_LIMIT));
        add(ConfigKey.of("bf16", BOOL, false, "bfloat16 compute (mapped to float32: DJL 0.36 has no bfloat16)"));
        add(ConfigKey.of("fp16", BOOL, false, "float16 compute (CUDA only)"));
        add(ConfigKey.of("seed", INT, 42, "random seed"));
        add(ConfigKey.of("resume_from_checkpoint", STRING, null, "true (latest) or a checkpoint directory"));
        add(ConfigKey.of("gradient_checkpointing", BOOL, true, "recompute blocks in the backward pass"));
        add(ConfigKey.of("eval_dataset", LIST, null,
                "held-out dataset names or files, scored before and after training (same formats as dataset)"));
        add(ConfigKey.of("predict_with_generate", BOOL, false,
                "also score eval_dataset by exact match of greedy answers (max_new_tokens)"));
        add(ConfigKey.of("per_device_eval_batch_size", INT, 8, "held-out examples scored at a time").range(1.0, NO_LIMIT));
        add(ConfigKey.of("eval_steps", INT, null, "evaluate the held-out split every N steps").range(1.0, NO_LIMIT));
        // export
        add(ConfigKey.of("export_dir", STRING, null, "where quantize/export write the model"));
        add(ConfigKey.of("export_size", INT, 5, "GB per output shard").range(1.0, NO_LIMIT));
        add(ConfigKey.of("export_device", STRING, "cpu", "device used while exporting").choices("cpu", "auto"));
        add(ConfigKey.of("export_legacy_format", BOOL, false, "write .bin files")
                .notImplemented("qlora4j writes safetensors only; .bin files are Python pickles"));
        add(ConfigKey.of("export_quantization_bit", INT, null, "write the merged model in a base format of these bits")
                .range(1.0, 8.0));
        add(ConfigKey.of("export_quantization_method", STRING, null,
                "base format of the merged model (default quantization_method)")
                .choices(BaseFormats.methods().toArray(String[]::new))
                .planned(BaseFormats.plannedMethods().toArray(String[]::new)));
        add(ConfigKey.of("export_dtype", STRING, "bfloat16", "dtype of exported weights").choices("bfloat16", "float16", "float32"));
        add(ConfigKey.of("merge_base", STRING, null, "weights the adapter is added to").choices("original", "dequantized"));
        // eval and generate
        add(ConfigKey.of("prompt", STRING, null, "text to continue"));
        add(ConfigKey.of("max_new_tokens", INT, 64, "tokens to generate").range(1.0, NO_LIMIT));
        add(ConfigKey.of("temperature", FLOAT, 0.0, "sampling temperature (0: greedy)").range(0.0, NO_LIMIT));
        add(ConfigKey.of("top_p", FLOAT, 1.0, "nucleus sampling mass").range(0.0, 1.0));
        add(ConfigKey.of("verify", BOOL, false, "compare the export against base + adapter"));
        add(ConfigKey.of("n", INT, 3, "examples the data preview prints").range(0.0, NO_LIMIT));
    }

    /** axolotl's names for LLaMA-Factory keys; values carry over unchanged. */
    private static final Map<String, String> ALIASES = Map.of(
            "base_model", "model_name_or_path",
            "lora_r", "lora_rank",
            "micro_batch_size", "per_device_train_batch_size",
            "sequence_len", "cutoff_len",
            "num_epochs", "num_train_epochs",
            "optimizer", "optim",
            "lr_scheduler", "lr_scheduler_type");

    private ConfigKeys() {}

    private static void add(ConfigKey key) {
        KEYS.put(key.name(), key);
    }

    /** The key of a base format's option, typed by its default. */
    private static ConfigKey formatOption(FormatOption o) {
        ConfigKey.Type type = o.defaultValue() instanceof Boolean ? BOOL : o.defaultValue() instanceof Integer ? INT
                : o.defaultValue() instanceof Double ? FLOAT : STRING;
        return ConfigKey.of(o.name(), type, o.defaultValue(), o.help()).choices(o.choices().toArray(String[]::new));
    }

    /** The key of that name, or null when there is none. */
    public static ConfigKey get(String name) {
        return KEYS.get(name);
    }

    /** Every known key, in documentation order. */
    public static List<ConfigKey> all() {
        return List.copyOf(KEYS.values());
    }

    static String canonicalName(String name) {
        return ALIASES.getOrDefault(name, name);
    }

    static Iterable<String> spellings() {
        List<String> names = new java.util.ArrayList<>(KEYS.keySet());
        names.addAll(ALIASES.keySet());
        names.addAll(List.of("load_in_4bit", "load_in_8bit", "adapter", "lora_target_linear"));
        return names;
    }
}
