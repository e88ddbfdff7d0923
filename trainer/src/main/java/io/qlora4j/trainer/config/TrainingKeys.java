package io.qlora4j.trainer.config;

import static io.qlora4j.trainer.config.ConfigKey.Type.ANY;
import static io.qlora4j.trainer.config.ConfigKey.Type.BOOL;
import static io.qlora4j.trainer.config.ConfigKey.Type.FLOAT;
import static io.qlora4j.trainer.config.ConfigKey.Type.INT;
import static io.qlora4j.trainer.config.ConfigKey.Type.LIST;
import static io.qlora4j.trainer.config.ConfigKey.Type.STRING;

import java.util.List;
import java.util.function.Consumer;

/**
 * The training keys: the fields of Hugging Face's {@code Seq2SeqTrainingArguments} (transformers 4.55 to 5.x, the
 * versions LLaMA-Factory supports: a key of either version is known) and of LLaMA-Factory's {@code TrainingArguments}
 * (Ray, profiler, fp8), in {@link ConfigKeys}' terms.
 */
final class TrainingKeys {
    private static final double NO_LIMIT = Double.MAX_VALUE;
    private static final String ONE_DEVICE = "qlora4j trains in one process on one device";
    private static final String NO_HUB = "nothing is uploaded to the Hub";
    private static final String NO_LOGGING = "qlora4j logs to the terminal and output_dir/metrics.jsonl";
    private static final String SAME_MATH = "a faster kernel of the same math; qlora4j runs its own";
    private static final String NO_METRICS = "qlora4j scores held-out data by loss (and exact match with"
            + " predict_with_generate)";

    private TrainingKeys() {}

    static void addTo(Consumer<ConfigKey> add) {
        add.accept(ConfigKey.of("output_dir", STRING, null, "where checkpoints and the adapter go"));
        add.accept(ConfigKey.of("overwrite_output_dir", BOOL, false, "allow a non-empty output_dir"));
        add.accept(ConfigKey.of("do_train", BOOL, true, "train; true by default (transformers' default is false,"
                + " and every LLaMA-Factory training example sets true); false is refused: qlora4j train trains, and"
                + " qlora4j eval scores a model"));
        add.accept(ConfigKey.of("do_eval", BOOL, false, "evaluate on the held-out data")
                .inert("held-out data (eval_dataset, val_size) is always scored"));
        add.accept(ConfigKey.of("do_predict", BOOL, false, "write generated predictions")
                .unsupported("generated_predictions.jsonl is not written; predict_with_generate scores exact match"));
        batchAndSchedule(add);
        loggingAndSaving(add);
        evaluation(add);
        precisionAndDevices(add);
        distributed(add);
        dataLoading(add);
        hubAndTracking(add);
        extras(add);
    }

    private static void batchAndSchedule(Consumer<ConfigKey> add) {
        add.accept(ConfigKey.of("per_device_train_batch_size", INT, 8, "examples per micro-batch").range(1.0, NO_LIMIT));
        add.accept(ConfigKey.of("per_device_eval_batch_size", INT, 8,
                "held-out examples per batch; the held-out loss averages each batch's token mean over the examples,"
                        + " as transformers' eval_loss does")
                .range(1.0, NO_LIMIT));
        add.accept(ConfigKey.of("per_gpu_train_batch_size", INT, null, "old name of per_device_train_batch_size")
                .unsupported("use per_device_train_batch_size"));
        add.accept(ConfigKey.of("per_gpu_eval_batch_size", INT, null, "old name of per_device_eval_batch_size")
                .unsupported("use per_device_eval_batch_size"));
        add.accept(ConfigKey.of("gradient_accumulation_steps", INT, 1,
                "micro-batches per optimizer step (an epoch's last step takes the batches left, as in transformers)")
                .range(1.0, NO_LIMIT));
        add.accept(ConfigKey.of("auto_find_batch_size", BOOL, false, "halve the batch on out-of-memory")
                .unsupported("automatic batch sizing is not implemented"));
        add.accept(ConfigKey.of("learning_rate", FLOAT, 5e-5, "peak learning rate").range(0.0, NO_LIMIT));
        add.accept(ConfigKey.of("num_train_epochs", FLOAT, 3.0,
                "epochs when max_steps is not set: ceil(epochs x ceil(batches / accumulation)) steps").range(0.0, NO_LIMIT));
        add.accept(ConfigKey.of("max_steps", INT, -1, "optimizer steps (0 or -1: from num_train_epochs, as transformers"
                + " reads any value not above 0)").range(-1.0, NO_LIMIT));
        add.accept(ConfigKey.of("lr_scheduler_type", STRING, "linear", "learning-rate schedule")
                .choices("linear", "cosine", "constant", "constant_with_warmup", "cosine_with_restarts", "polynomial",
                        "inverse_sqrt", "cosine_with_min_lr")
                .planned("reduce_lr_on_plateau", "cosine_warmup_with_min_lr", "warmup_stable_decay"));
        add.accept(ConfigKey.of("lr_scheduler_kwargs", ANY, null, "the schedule's settings, a mapping: num_cycles"
                + " (cosine, cosine_with_restarts, cosine_with_min_lr), lr_end and power (polynomial), timescale"
                + " (inverse_sqrt), min_lr or min_lr_rate (cosine_with_min_lr)"));
        add.accept(ConfigKey.of("warmup_ratio", FLOAT, null,
                "warm-up share of the steps; when set it replaces warmup_steps, as in transformers 5").range(0.0, 1.0));
        add.accept(ConfigKey.of("warmup_steps", FLOAT, 0.0,
                "warm-up steps (a fraction below 1: of the run's steps; above 1 the fraction part is dropped)")
                .range(0.0, NO_LIMIT));
        add.accept(ConfigKey.of("optim", STRING, "adamw_torch", "optimizer")
                .choices("adamw_torch", "paged_adamw_32bit", "paged_adamw_8bit", "adamw_8bit")
                .alias("adamw_torch_fused", "adamw_torch").alias("adamw_bnb_8bit", "adamw_8bit")
                .planned("adamw_torch_xla", "adamw_torch_npu_fused", "adamw_apex_fused", "adafactor", "adamw_anyprecision",
                        "adamw_torch_4bit", "adamw_torch_8bit", "ademamix", "sgd", "adagrad", "ademamix_8bit",
                        "lion_8bit", "lion_32bit", "paged_ademamix_32bit", "paged_ademamix_8bit", "paged_lion_32bit",
                        "paged_lion_8bit", "rmsprop", "rmsprop_bnb", "rmsprop_bnb_8bit", "rmsprop_bnb_32bit",
                        "galore_adamw", "galore_adamw_8bit", "galore_adafactor", "galore_adamw_layerwise",
                        "galore_adamw_8bit_layerwise", "galore_adafactor_layerwise", "lomo", "adalomo", "grokadamw",
                        "schedule_free_radam", "schedule_free_adamw", "schedule_free_sgd", "apollo_adamw",
                        "apollo_adamw_layerwise", "stable_adamw"));
        add.accept(ConfigKey.of("optim_args", STRING, null, "optimizer settings")
                .unsupported("the implemented optimizers take their settings from adam_* and weight_decay"));
        add.accept(ConfigKey.of("optim_target_modules", ANY, null, "GaLore/APOLLO target modules")
                .inert("only with the GaLore and APOLLO optimizers, which are refused"));
        add.accept(ConfigKey.of("adafactor", BOOL, false, "use Adafactor").unsupported("Adafactor is not implemented"));
        add.accept(ConfigKey.of("weight_decay", FLOAT, 0.0, "decoupled weight decay").range(0.0, NO_LIMIT));
        add.accept(ConfigKey.of("adam_beta1", FLOAT, 0.9, "AdamW beta1").range(0.0, 0.999999));
        add.accept(ConfigKey.of("adam_beta2", FLOAT, 0.999, "AdamW beta2").range(0.0, 0.999999999));
        add.accept(ConfigKey.of("adam_epsilon", FLOAT, 1e-8, "AdamW epsilon").range(0.0, NO_LIMIT));
        add.accept(ConfigKey.of("max_grad_norm", FLOAT, 1.0, "global gradient-norm clip (0: off)").range(0.0, NO_LIMIT));
        add.accept(ConfigKey.of("label_smoothing_factor", FLOAT, 0.0, "label smoothing")
                .unsupported("label smoothing is not implemented"));
        add.accept(ConfigKey.of("neftune_noise_alpha", FLOAT, null, "NEFTune embedding noise")
                .unsupported("NEFTune is not implemented"));
        add.accept(ConfigKey.of("average_tokens_across_devices", BOOL, true, "loss normalized over all devices")
                .inert(ONE_DEVICE));
        add.accept(ConfigKey.of("gradient_checkpointing", BOOL, true,
                "recompute blocks in the backward pass (how much: gradient_checkpointing_mode)"));
        add.accept(ConfigKey.of("gradient_checkpointing_kwargs", ANY, null, "torch checkpointing settings")
                .inert("qlora4j recomputes block by block itself"));
        add.accept(ConfigKey.of("seed", INT, 42, "random seed"));
        add.accept(ConfigKey.of("data_seed", INT, null,
                "seed of the epoch order (transformers' sampler seed; unset: seed); the split and the start follow seed"));
        add.accept(ConfigKey.of("full_determinism", BOOL, false, "deterministic kernels")
                .inert("qlora4j's runs repeat bit for bit from their seed"));
        add.accept(ConfigKey.of("resume_from_checkpoint", STRING, null, "true (latest) or a checkpoint directory"));
        add.accept(ConfigKey.of("ignore_data_skip", BOOL, false, "restart the data when resuming")
                .unsupported("a resumed run continues the data where it stopped"));
    }

    private static void loggingAndSaving(Consumer<ConfigKey> add) {
        add.accept(ConfigKey.of("logging_strategy", STRING, "steps",
                "when to log: every logging_steps, at each epoch's end, or no (the last step is logged either way)")
                .choices("steps", "epoch", "no"));
        add.accept(ConfigKey.of("logging_steps", FLOAT, 500.0,
                "log every N optimizer steps (a fraction below 1: of the run's steps)"));
        add.accept(ConfigKey.of("logging_first_step", BOOL, false, "log the first step too"));
        add.accept(ConfigKey.of("logging_nan_inf_filter", BOOL, true, "leave NaN losses out of the log")
                .inert("a non-finite loss stops qlora4j's run"));
        add.accept(ConfigKey.of("logging_dir", STRING, null, "TensorBoard folder").inert(NO_LOGGING));
        for (String level : List.of("log_level", "log_level_replica")) {
            add.accept(ConfigKey.of(level, STRING, level.equals("log_level") ? "passive" : "warning",
                    "transformers' log level").inert(NO_LOGGING));
        }
        add.accept(ConfigKey.of("log_on_each_node", BOOL, true, "log on every node").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("disable_tqdm", BOOL, null, "no progress bar")
                .inert("qlora4j draws its own progress line on a terminal only"));
        add.accept(ConfigKey.of("save_strategy", STRING, "steps",
                "when to save checkpoints: every save_steps, at each epoch's end, or no (the last step is saved"
                        + " either way)").choices("steps", "epoch", "no").planned("best"));
        add.accept(ConfigKey.of("save_steps", FLOAT, 500.0,
                "checkpoint every N optimizer steps (a fraction below 1: of the run's steps)"));
        add.accept(ConfigKey.of("save_total_limit", INT, null, "keep at most N checkpoints").range(1.0, NO_LIMIT));
        add.accept(ConfigKey.of("save_only_model", BOOL, false,
                "checkpoints without optimizer state (smaller; such a checkpoint cannot be resumed)"));
        add.accept(ConfigKey.of("save_safetensors", BOOL, true, "safetensors (false: .bin)")
                .unsupported("qlora4j writes safetensors only; .bin files are Python pickles"));
        add.accept(ConfigKey.of("save_on_each_node", BOOL, false, "save on every node").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("enable_jit_checkpoint", BOOL, false, "checkpoint on SIGTERM")
                .inert("checkpoints are written whole or not at all; resume from the last one"));
        add.accept(ConfigKey.of("restore_callback_states_from_checkpoint", BOOL, false, "restore callbacks")
                .inert("qlora4j has no callbacks"));
        add.accept(ConfigKey.of("load_best_model_at_end", BOOL, false, "keep the best checkpoint as the result")
                .unsupported("best-checkpoint selection is not implemented"));
        add.accept(ConfigKey.of("metric_for_best_model", STRING, null, "metric of the best checkpoint")
                .inert("only with load_best_model_at_end, which is refused"));
        add.accept(ConfigKey.of("greater_is_better", BOOL, null, "direction of the best metric")
                .inert("only with load_best_model_at_end, which is refused"));
    }

    private static void evaluation(Consumer<ConfigKey> add) {
        add.accept(ConfigKey.of("eval_strategy", STRING, "no",
                "steps: score the val_size split every eval_steps (default logging_steps); epoch: at each epoch's end")
                .choices("no", "steps", "epoch"));
        add.accept(ConfigKey.of("eval_steps", FLOAT, null,
                "score the val_size split every N steps (a fraction below 1: of the run's steps; unset: logging_steps)"));
        add.accept(ConfigKey.of("eval_delay", FLOAT, 0.0, "steps before the first evaluation")
                .unsupported("delayed evaluation is not implemented"));
        add.accept(ConfigKey.of("eval_on_start", BOOL, false, "evaluate before training")
                .inert("eval_dataset is always scored before training"));
        add.accept(ConfigKey.of("predict_with_generate", BOOL, false,
                "also score eval_dataset by exact match of greedy answers (max_new_tokens, ending at the template's"
                        + " stop tokens)"));
        add.accept(ConfigKey.of("generation_max_length", INT, null, "max_length of evaluation generation")
                .inert("max_new_tokens bounds generation"));
        add.accept(ConfigKey.of("generation_num_beams", INT, null, "beams of evaluation generation")
                .unsupported("beam search is not implemented"));
        add.accept(ConfigKey.of("generation_config", STRING, null, "generation config of evaluation")
                .unsupported("set max_new_tokens, temperature and top_p instead"));
        add.accept(ConfigKey.of("sortish_sampler", BOOL, false, "length-sorted evaluation batches")
                .inert("only for sequence-to-sequence models"));
        for (String name : List.of("prediction_loss_only", "eval_do_concat_batches", "eval_use_gather_object",
                "batch_eval_metrics")) {
            add.accept(ConfigKey.of(name, BOOL, name.equals("eval_do_concat_batches"), "evaluation output handling")
                    .inert(NO_METRICS));
        }
        add.accept(ConfigKey.of("eval_accumulation_steps", INT, null, "evaluation steps kept on the device")
                .inert(NO_METRICS));
        add.accept(ConfigKey.of("include_inputs_for_metrics", BOOL, false, "inputs to compute_metrics").inert(NO_METRICS));
        add.accept(ConfigKey.of("include_for_metrics", ANY, null, "extra data to compute_metrics").inert(NO_METRICS));
        add.accept(ConfigKey.of("label_names", ANY, null, "label columns").inert("qlora4j's batches hold one label array"));
        add.accept(ConfigKey.of("past_index", INT, -1, "past state of the model output").inert(NO_METRICS));
    }

    private static void precisionAndDevices(Consumer<ConfigKey> add) {
        add.accept(ConfigKey.of("bf16", BOOL, false, "bfloat16 compute (mapped to float32: DJL 0.36 has no bfloat16)"));
        add.accept(ConfigKey.of("fp16", BOOL, false, "float16 compute (CUDA only)"));
        add.accept(ConfigKey.of("use_cpu", BOOL, false, "compute on the CPU (device: cpu)"));
        add.accept(ConfigKey.of("no_cuda", BOOL, false, "old name of use_cpu"));
        add.accept(ConfigKey.of("tf32", BOOL, null, "TensorFloat-32 float32 matmuls on CUDA (must agree with"
                + " TORCH_ALLOW_TF32_CUBLAS_OVERRIDE, which the launcher sets to 1)"));
        for (String name : List.of("bf16_full_eval", "fp16_full_eval")) {
            add.accept(ConfigKey.of(name, BOOL, false, "evaluate in 16 bits")
                    .inert("evaluation computes in the training dtype"));
        }
        add.accept(ConfigKey.of("fp16_opt_level", STRING, "O1", "Apex AMP level").inert("no Apex on the JVM"));
        for (String name : List.of("half_precision_backend", "fp16_backend")) {
            add.accept(ConfigKey.of(name, STRING, "auto", "mixed-precision backend")
                    .inert("qlora4j's float16 path is its own"));
        }
        add.accept(ConfigKey.of("use_mps_device", BOOL, false, "Apple MPS device").inert("device: cpu or cuda"));
        add.accept(ConfigKey.of("use_ipex", BOOL, false, "Intel extension").inert(SAME_MATH));
        add.accept(ConfigKey.of("jit_mode_eval", BOOL, false, "torch.jit for evaluation").inert(SAME_MATH));
        add.accept(ConfigKey.of("torch_compile", BOOL, false, "torch.compile").inert(SAME_MATH));
        add.accept(ConfigKey.of("torch_compile_backend", STRING, null, "torch.compile backend").inert(SAME_MATH));
        add.accept(ConfigKey.of("torch_compile_mode", STRING, null, "torch.compile mode").inert(SAME_MATH));
        add.accept(ConfigKey.of("torchdynamo", STRING, null, "old name of torch_compile_backend").inert(SAME_MATH));
        add.accept(ConfigKey.of("use_liger_kernel", BOOL, false, "Liger kernels").inert(SAME_MATH));
        add.accept(ConfigKey.of("liger_kernel_config", ANY, null, "Liger kernel settings").inert(SAME_MATH));
        add.accept(ConfigKey.of("use_cache", BOOL, false, "KV cache while training").inert(SAME_MATH));
        add.accept(ConfigKey.of("torch_empty_cache_steps", INT, null, "empty the CUDA cache every N steps")
                .inert("qlora4j releases each step's arrays itself"));
        add.accept(ConfigKey.of("skip_memory_metrics", BOOL, true, "memory metrics")
                .inert("qlora4j reports the paged optimizer's memory in metrics.jsonl"));
        add.accept(ConfigKey.of("debug", STRING, null, "underflow/overflow and TPU debugging")
                .inert("a non-finite loss or gradient norm stops qlora4j's run"));
        add.accept(ConfigKey.of("fp8", BOOL, false, "FP8 training").unsupported("FP8 training is not implemented"));
        add.accept(ConfigKey.of("fp8_backend", STRING, "auto", "FP8 backend").inert("only with fp8, which is refused"));
        add.accept(ConfigKey.of("fp8_enable_fsdp_float8_all_gather", BOOL, false, "FP8 all-gather")
                .inert("only with fp8, which is refused"));
    }

    private static void distributed(Consumer<ConfigKey> add) {
        add.accept(ConfigKey.of("deepspeed", ANY, null, "DeepSpeed config")
                .unsupported(ONE_DEVICE + "; its paged optimizer state is the memory saving (paged_adamw_*)"));
        add.accept(ConfigKey.of("fsdp", LIST, null, "fully sharded data parallelism").unsupported(ONE_DEVICE));
        add.accept(ConfigKey.of("tp_size", INT, 0, "tensor parallelism").unsupported(ONE_DEVICE));
        for (String name : List.of("fsdp_config", "accelerator_config", "parallelism_config")) {
            add.accept(ConfigKey.of(name, ANY, null, "distributed settings").inert(ONE_DEVICE));
        }
        add.accept(ConfigKey.of("fsdp_min_num_params", INT, 0, "FSDP wrapping").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("fsdp_transformer_layer_cls_to_wrap", STRING, null, "FSDP wrapping").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("local_rank", INT, -1, "process rank").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("ddp_backend", STRING, null, "DDP backend").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("ddp_find_unused_parameters", BOOL, null, "DDP setting").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("ddp_bucket_cap_mb", INT, null, "DDP setting").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("ddp_broadcast_buffers", BOOL, null, "DDP setting").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("ddp_timeout", INT, 1800, "DDP timeout in seconds").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("tpu_num_cores", INT, null, "TPU cores").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("tpu_metrics_debug", BOOL, false, "TPU metrics").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("mp_parameters", STRING, null, "SageMaker model parallelism").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("dispatch_batches", BOOL, null, "Accelerate batch dispatch").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("split_batches", BOOL, null, "Accelerate batch splitting").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("ray_num_workers", INT, 1, "Ray workers").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("ray_init_kwargs", ANY, null, "Ray settings").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("ray_scope", STRING, "last", "Ray tune scope").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("master_addr", STRING, null, "distributed master address").inert(ONE_DEVICE));
        add.accept(ConfigKey.of("master_port", STRING, null, "distributed master port").inert(ONE_DEVICE));
    }

    private static void dataLoading(Consumer<ConfigKey> add) {
        add.accept(ConfigKey.of("group_by_length", BOOL, false, "batch examples of similar length"));
        add.accept(ConfigKey.of("train_sampling_strategy", STRING, "random",
                "order of training examples (group_by_length: as group_by_length; sequential: as disable_shuffling)")
                .choices("random", "sequential", "group_by_length"));
        add.accept(ConfigKey.of("length_column_name", STRING, "length", "precomputed lengths")
                .inert("qlora4j knows each example's length"));
        add.accept(ConfigKey.of("dataloader_drop_last", BOOL, false, "drop the last incomplete batch")
                .unsupported("the last batch of an epoch is always used"));
        add.accept(ConfigKey.of("dataloader_num_workers", INT, 0, "loader processes")
                .inert("qlora4j reads and tokenizes on every core of its one process"));
        add.accept(ConfigKey.of("dataloader_prefetch_factor", INT, null, "batches prefetched per loader process")
                .inert("qlora4j reads and tokenizes on every core of its one process"));
        add.accept(ConfigKey.of("dataloader_pin_memory", BOOL, true, "pinned host memory").inert(SAME_MATH));
        add.accept(ConfigKey.of("dataloader_persistent_workers", BOOL, false, "keep loader processes")
                .inert("qlora4j reads and tokenizes on every core of its one process"));
        add.accept(ConfigKey.of("remove_unused_columns", BOOL, true, "drop unused dataset columns")
                .inert("qlora4j reads only the mapped columns"));
    }

    private static void hubAndTracking(Consumer<ConfigKey> add) {
        add.accept(ConfigKey.of("report_to", LIST, "none", "experiment trackers").inert("experiment trackers are not"
                + " implemented; metrics go to output_dir/metrics.jsonl"));
        for (String name : List.of("run_name", "project", "trackio_space_id")) {
            add.accept(ConfigKey.of(name, STRING, name.equals("project") ? "huggingface"
                    : name.equals("trackio_space_id") ? "trackio" : null, "tracker setting").inert(NO_LOGGING));
        }
        for (String name : List.of("include_tokens_per_second", "include_num_input_tokens_seen")) {
            add.accept(ConfigKey.of(name, STRING, null, "throughput metrics")
                    .inert("qlora4j reports tokens per second"));
        }
        add.accept(ConfigKey.of("push_to_hub", BOOL, false, "upload to the Hub").unsupported(NO_HUB));
        for (String name : List.of("hub_model_id", "hub_strategy", "hub_token", "hub_revision", "push_to_hub_model_id",
                "push_to_hub_organization", "push_to_hub_token")) {
            add.accept(ConfigKey.of(name, STRING, name.equals("hub_strategy") ? "every_save" : null, "Hub setting")
                    .inert("only with push_to_hub, which is refused"));
        }
        for (String name : List.of("hub_private_repo", "hub_always_push")) {
            add.accept(ConfigKey.of(name, BOOL, name.equals("hub_always_push") ? false : null, "Hub setting")
                    .inert("only with push_to_hub, which is refused"));
        }
    }

    /** LLaMA-Factory's own TrainingArguments: the profiler. */
    private static void extras(Consumer<ConfigKey> add) {
        add.accept(ConfigKey.of("use_legacy_prediction_loop", BOOL, false, "old prediction loop").inert(NO_METRICS));
        add.accept(ConfigKey.of("enable_torch_profiler", BOOL, false, "torch profiler")
                .unsupported("the torch profiler is not available on the JVM; bench/ measures qlora4j"));
        String profiler = "only with enable_torch_profiler, which is refused";
        add.accept(ConfigKey.of("profiler_output_dir", STRING, null, "profiler setting").inert(profiler));
        add.accept(ConfigKey.of("profile_modules", STRING, null, "profiler setting").inert(profiler));
        for (String name : List.of("profiler_wait_steps", "profiler_warmup_steps", "profiler_active_steps",
                "profiler_repeat")) {
            add.accept(ConfigKey.of(name, INT, 1, "profiler setting").inert(profiler));
        }
        for (String name : List.of("profiler_record_shapes", "profiler_profile_memory", "profiler_with_stack")) {
            add.accept(ConfigKey.of(name, BOOL, true, "profiler setting").inert(profiler));
        }
    }
}
