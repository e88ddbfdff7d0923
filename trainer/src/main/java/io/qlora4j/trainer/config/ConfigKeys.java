package io.qlora4j.trainer.config;

import static io.qlora4j.trainer.config.ConfigKey.Type.ANY;
import static io.qlora4j.trainer.config.ConfigKey.Type.BOOL;
import static io.qlora4j.trainer.config.ConfigKey.Type.FLOAT;
import static io.qlora4j.trainer.config.ConfigKey.Type.INT;
import static io.qlora4j.trainer.config.ConfigKey.Type.LIST;
import static io.qlora4j.trainer.config.ConfigKey.Type.STRING;

import io.qlora4j.model.format.BaseFormats;
import io.qlora4j.model.format.FormatOption;
import io.qlora4j.trainer.config.ConfigKey.Section;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;

/**
 * Every key a qlora4j job may set: every field of LLaMA-Factory's argument classes (model, data, finetuning,
 * generating) and of the Hugging Face {@code Seq2SeqTrainingArguments} its training arguments extend (transformers
 * 4.55 to 5.x, LLaMA-Factory at ff6d4d1), with their names and defaults, each marked implemented, without effect
 * in a single-process run, or not implemented; qlora4j's own additions; and the axolotl aliases users bring
 * along. README.md's key table is rendered from this registry ({@link KeyTable}).
 */
public final class ConfigKeys {
    private static final double NO_LIMIT = Double.MAX_VALUE;
    private static final String ONE_DEVICE = "qlora4j trains in one process on one device";
    private static final String NO_HUB = "models, adapters and datasets are local paths; nothing is downloaded or uploaded";
    private static final String ONLY_WITH = "only with ";

    private static final Map<String, ConfigKey> KEYS = new LinkedHashMap<>();
    private static Section section;

    static {
        section = Section.MODEL;
        add(ConfigKey.of("model_name_or_path", STRING, null, "Hugging Face model directory"));
        add(ConfigKey.of("adapter_name_or_path", LIST, null, "PEFT adapter directory (comma list)"));
        add(ConfigKey.of("adapter_folder", STRING, null, "folder holding the adapters to load")
                .unsupported("name the adapter directories in adapter_name_or_path"));
        add(ConfigKey.of("cache_dir", STRING, null, "download cache").inert(NO_HUB));
        add(ConfigKey.of("use_fast_tokenizer", BOOL, true, "use the fast (tokenizers) tokenizer")
                .unsupported("qlora4j reads tokenizer.json, the fast tokenizer; slow tokenizers are Python"));
        add(ConfigKey.of("resize_vocab", BOOL, false, "resize the vocabulary and embeddings")
                .unsupported("resizing the embeddings is not implemented"));
        add(ConfigKey.of("split_special_tokens", BOOL, false, "tokenize special tokens as text")
                .unsupported("special tokens are always matched whole"));
        add(ConfigKey.of("add_tokens", LIST, null, "tokens to add to the vocabulary")
                .unsupported("adding tokens to the vocabulary is not implemented"));
        add(ConfigKey.of("add_special_tokens", LIST, null, "special tokens to add to the vocabulary")
                .unsupported("adding tokens to the vocabulary is not implemented"));
        add(ConfigKey.of("new_special_tokens_config", STRING, null, "YAML file of special tokens to add")
                .unsupported("adding tokens to the vocabulary is not implemented"));
        add(ConfigKey.of("init_special_tokens", STRING, "noise_init", "initialization of added tokens")
                .inert(ONLY_WITH + "added tokens, which are refused"));
        add(ConfigKey.of("model_revision", STRING, "main", "Hub revision of the model").unsupported(NO_HUB));
        add(ConfigKey.of("low_cpu_mem_usage", BOOL, true, "load the model with little host memory")
                .inert("qlora4j always streams checkpoints tensor by tensor"));
        // the base format: methods and options from the format registry; a method's bit widths are checked there
        add(ConfigKey.of("quantization_bit", INT, null, "bits of the frozen base weights (per method)").range(1.0, 8.0));
        add(ConfigKey.of("quantization_method", STRING, "bnb", "base-weight format")
                .choices(BaseFormats.methods().toArray(String[]::new))
                .planned(BaseFormats.plannedMethods().toArray(String[]::new)));
        BaseFormats.options().forEach(o -> add(formatOption(o)));
        add(ConfigKey.of("quantization_device_map", STRING, null, "device map of a 4-bit model for inference")
                .inert(ONE_DEVICE));
        add(ConfigKey.of("rope_scaling", STRING, null, "override the model's RoPE scaling")
                .notImplemented("set rope_scaling in the model's config.json instead"));
        add(ConfigKey.of("flash_attn", STRING, "auto", "attention kernel").choices("auto", "disabled", "sdpa", "fa2", "fa3")
                .inert("attention is composed of NDArray ops, eager attention's math (LLaMA-Factory's sdpa drops Gemma 2's"
                        + " attention soft-capping, with a warning; otherwise the kernels agree up to rounding)"));
        add(ConfigKey.of("shift_attn", BOOL, false, "LongLoRA's shift short attention")
                .unsupported("S^2-Attn is not implemented"));
        add(ConfigKey.of("mixture_of_depths", STRING, null, "convert to or load a mixture-of-depths model")
                .unsupported("mixture of depths is not implemented"));
        add(ConfigKey.of("use_unsloth", BOOL, false, "Unsloth's kernels").inert("CUDA kernels of the same math"));
        add(ConfigKey.of("use_unsloth_gc", BOOL, false, "Unsloth's gradient checkpointing")
                .inert("qlora4j recomputes block by block itself"));
        add(ConfigKey.of("enable_liger_kernel", BOOL, false, "Liger's fused kernels").inert("CUDA kernels of the same math"));
        add(ConfigKey.of("moe_aux_loss_coef", FLOAT, null, "router loss of mixture-of-experts models")
                .inert("no mixture-of-experts family is implemented"));
        add(ConfigKey.of("disable_gradient_checkpointing", BOOL, false,
                "keep activations instead of recomputing blocks (gradient_checkpointing: false)"));
        add(ConfigKey.of("use_reentrant_gc", BOOL, true, "torch's reentrant checkpointing")
                .inert("qlora4j recomputes block by block itself"));
        add(ConfigKey.of("upcast_layernorm", BOOL, false, "norm weights in float32")
                .inert("qlora4j keeps norm weights in float32"));
        add(ConfigKey.of("upcast_lmhead_output", BOOL, false, "lm_head output in float32")
                .inert("qlora4j computes logits in float32"));
        add(ConfigKey.of("train_from_scratch", BOOL, false, "randomly initialize the model")
                .unsupported("write a random model with qlora4j init-model, then train it"));
        add(ConfigKey.of("infer_backend", STRING, "huggingface", "inference engine").choices("huggingface")
                .planned("vllm", "sglang", "ktransformers"));
        add(ConfigKey.of("offload_folder", STRING, "offload", "where weights are offloaded").inert(ONE_DEVICE));
        add(ConfigKey.of("use_kv_cache", BOOL, true, "KV cache in generation")
                .inert("generation always uses a KV cache; the result is the same"));
        add(ConfigKey.of("use_v1_kernels", BOOL, false, "LLaMA-Factory v1 kernels").inert("CUDA kernels of the same math"));
        add(ConfigKey.of("infer_dtype", STRING, "auto", "dtype for inference").choices("auto", "float32", "float16")
                .notImplemented("eval and generate compute in the dtype that device and fp16 choose"));
        for (String hub : List.of("hf_hub_token", "ms_hub_token", "om_hub_token")) {
            add(ConfigKey.of(hub, STRING, null, "Hub token").inert(NO_HUB));
        }
        add(ConfigKey.of("print_param_status", BOOL, false, "print each parameter's status")
                .inert("qlora4j prints the trainable parameter count"));
        add(ConfigKey.of("trust_remote_code", BOOL, false, "run a model's Python code").inert("qlora4j runs no Python"));
        addMedia();
        add(ConfigKey.of("export_dir", STRING, null, "where quantize/export write the model"));
        add(ConfigKey.of("export_size", INT, 5, "GB per output shard").range(1.0, NO_LIMIT));
        add(ConfigKey.of("export_device", STRING, "cpu", "device used while exporting").choices("cpu", "auto"));
        add(ConfigKey.of("export_quantization_bit", INT, null, "write the merged model in a base format of these bits"
                + " (LLaMA-Factory's is a calibrated GPTQ export, which qlora4j lacks: with export_quantization_method"
                + " it is one of qlora4j's formats)").range(1.0, 8.0));
        add(ConfigKey.of("export_quantization_dataset", STRING, null, "calibration data of a GPTQ export")
                .notImplemented("calibrated GPTQ export"));
        add(ConfigKey.of("export_quantization_nsamples", INT, 128, "calibration samples of a GPTQ export")
                .notImplemented("calibrated GPTQ export"));
        add(ConfigKey.of("export_quantization_maxlen", INT, 1024, "calibration length of a GPTQ export")
                .notImplemented("calibrated GPTQ export"));
        add(ConfigKey.of("export_legacy_format", BOOL, false, "write .bin files")
                .notImplemented("qlora4j writes safetensors only; .bin files are Python pickles"));
        add(ConfigKey.of("export_hub_model_id", STRING, null, "push the export to the Hub").unsupported(NO_HUB));
        addEngines();

        section = Section.DATA;
        add(ConfigKey.of("template", STRING, null,
                "chat template (unset: the tokenizer's chat_template recognised, else empty; auto: recognised)"));
        add(ConfigKey.of("dataset", LIST, null, "dataset names or files (comma list)"));
        add(ConfigKey.of("eval_dataset", LIST, null,
                "held-out dataset names or files, scored before and after training (same formats as dataset; read,"
                        + " labelled and packed as the training data: template, system prompt, cutoff_len, max_samples,"
                        + " mask_history, packing; with predict_with_generate only the last answer is labelled)"));
        add(ConfigKey.of("dataset_dir", STRING, "data", "folder holding dataset_info.json"));
        add(ConfigKey.of("media_dir", STRING, null, "folder of images, videos and audios")
                .inert(ONLY_WITH + "multimodal datasets, which are refused"));
        add(ConfigKey.of("cutoff_len", INT, 2048, "maximum tokens per example").range(1.0, NO_LIMIT));
        add(ConfigKey.of("train_on_prompt", BOOL, false, "also train on prompt tokens"));
        add(ConfigKey.of("mask_history", BOOL, false, "train only on the last turn"));
        add(ConfigKey.of("streaming", BOOL, false, "read the files each epoch instead of holding the examples"));
        add(ConfigKey.of("buffer_size", INT, 16384, "shuffle buffer when streaming").range(1.0, NO_LIMIT));
        add(ConfigKey.of("mix_strategy", STRING, "concat", "how datasets are mixed").choices("concat")
                .planned("interleave_under", "interleave_over", "interleave_once"));
        add(ConfigKey.of("interleave_probs", LIST, null, "probabilities of interleaved datasets")
                .inert(ONLY_WITH + "an interleave mix_strategy, which is refused"));
        add(ConfigKey.of("overwrite_cache", BOOL, false, "rebuild the tokenized cache")
                .inert("qlora4j keeps no tokenized cache"));
        add(ConfigKey.of("preprocessing_batch_size", INT, 1000, "records packed together").range(1.0, NO_LIMIT));
        add(ConfigKey.of("preprocessing_num_workers", INT, null, "tokenizer processes; as in LLaMA-Factory, also the"
                + " contiguous shards whose records are packed apart (qlora4j tokenizes on every core of its one process)")
                .range(1.0, NO_LIMIT));
        add(ConfigKey.of("max_samples", INT, null, "use at most this many records per dataset").range(1.0, NO_LIMIT));
        add(ConfigKey.of("eval_num_beams", INT, null, "beams of generation in evaluation")
                .unsupported("beam search is not implemented"));
        add(ConfigKey.of("ignore_pad_token_for_loss", BOOL, true, "leave padding out of the loss")
                .unsupported("padding is always left out of the loss"));
        add(ConfigKey.of("val_size", FLOAT, 0.0, "held-out fraction (< 1, rounded up) or count (> 1; 1 only when"
                + " streaming): the examples, and their order, that LLaMA-Factory's train_test_split(seed=seed) picks;"
                + " streaming holds out the first in file order").range(0.0, NO_LIMIT));
        add(ConfigKey.of("eval_on_each_dataset", BOOL, false, "score each eval dataset apart")
                .unsupported("the held-out datasets are scored together"));
        add(ConfigKey.of("packing", BOOL, null, "pack examples into cutoff_len sequences (unset: for stage pt only)"));
        add(ConfigKey.of("neat_packing", BOOL, false, "pack examples that do not attend to each other (sets packing,"
                + " as LLaMA-Factory does; qlora4j's packing always keeps examples apart)"));
        add(ConfigKey.of("tool_format", STRING, null, "tool format instead of the template's")
                .choices("default", "llama3", "mistral", "qwen")
                .planned("gemma4", "glm4", "glm4_moe", "lfm2", "ling", "minimax1", "minimax2", "qwen3_5", "seed_oss"));
        add(ConfigKey.of("default_system", STRING, null, "system prompt instead of the template's"));
        add(ConfigKey.of("enable_thinking", BOOL, true,
                "reasoning templates: train the thought blocks (false: remove them, empty block in the prompt)"));
        add(ConfigKey.of("preserve_thinking", BOOL, false,
                "reasoning templates with mask_history: keep the thoughts of earlier answers"));
        add(ConfigKey.of("tokenized_path", STRING, null, "save or load the tokenized dataset")
                .unsupported("a tokenized dataset cache is not implemented"));
        add(ConfigKey.of("data_shared_file_system", BOOL, false, "nodes share a file system").inert(ONE_DEVICE));

        section = Section.FINETUNING;
        add(ConfigKey.of("stage", STRING, "sft", "training stage").choices("sft", "pt").planned("rm", "ppo", "dpo", "kto"));
        add(ConfigKey.of("finetuning_type", STRING, "lora", "what is trained").choices("lora", "full")
                .planned("freeze", "oft"));
        add(ConfigKey.of("pure_bf16", BOOL, false, "train in bfloat16 without float32 masters")
                .inert("bfloat16 compute runs in float32, as bf16 does (DJL 0.36 has no bfloat16)"));
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
        add(ConfigKey.of("additional_target", STRING, null, "modules trained in full besides the adapters")
                .unsupported("modules_to_save is not implemented"));
        add(ConfigKey.of("create_new_adapter", BOOL, false, "merge adapter_name_or_path, then train a new adapter")
                .unsupported("merge with qlora4j export, then train on the merged model"));
        addMethods();
        add(ConfigKey.of("compute_accuracy", BOOL, false, "token accuracy in evaluation")
                .unsupported("token accuracy is not implemented; predict_with_generate scores exact match"));
        add(ConfigKey.of("disable_shuffling", BOOL, false, "keep the data in file order"));
        add(ConfigKey.of("early_stopping_steps", INT, null, "stop when the eval loss stops falling")
                .unsupported("early stopping is not implemented"));
        add(ConfigKey.of("plot_loss", BOOL, false,
                "draw training_loss.png (skipped with one warning where the Java runtime cannot draw)"));
        add(ConfigKey.of("include_effective_tokens_per_second", BOOL, false, "report tokens per second")
                .inert("qlora4j always reports tokens per second"));

        section = Section.GENERATING;
        add(ConfigKey.of("do_sample", BOOL, true, "sample (false: greedy); greedy also at temperature 0"));
        add(ConfigKey.of("temperature", FLOAT, 0.0, "sampling temperature (0: greedy; LLaMA-Factory's default is 0.95)")
                .range(0.0, NO_LIMIT));
        add(ConfigKey.of("top_p", FLOAT, 1.0, "nucleus sampling mass (LLaMA-Factory's default is 0.7)").range(0.0, 1.0));
        add(ConfigKey.of("top_k", INT, 50, "sampling keeps the k most likely tokens (0: all), before top_p")
                .range(0.0, NO_LIMIT));
        add(ConfigKey.of("num_beams", INT, 1, "beam search width").unsupported("beam search is not implemented"));
        add(ConfigKey.of("max_length", INT, 1024, "prompt + generated tokens")
                .inert("max_new_tokens bounds generation, as LLaMA-Factory does when it is set"));
        add(ConfigKey.of("max_new_tokens", INT, 64, "tokens to generate (LLaMA-Factory's default is 1024)")
                .range(1.0, NO_LIMIT));
        add(ConfigKey.of("repetition_penalty", FLOAT, 1.0, "divides the positive logits of tokens the prompt or answer"
                + " holds and multiplies their negative ones (1: none), in generate and predict_with_generate, greedy"
                + " too; above 0"));
        add(ConfigKey.of("length_penalty", FLOAT, 1.0, "length penalty of beam search")
                .inert(ONLY_WITH + "beam search, which is refused"));
        add(ConfigKey.of("skip_special_tokens", BOOL, true, "leave special tokens out of generated text"));

        section = Section.TRAINING;
        TrainingKeys.addTo(ConfigKeys::add);

        section = Section.QLORA4J;
        add(ConfigKey.of("device", STRING, "auto", "compute device").choices("auto", "cpu", "cuda"));
        add(ConfigKey.of("export_quantization_method", STRING, null,
                "base format export writes the merged model in, with export_quantization_bit")
                .choices(BaseFormats.methods().toArray(String[]::new))
                .planned(BaseFormats.plannedMethods().toArray(String[]::new)));
        add(ConfigKey.of("target_bits", FLOAT, null, "CVXQ: stored bits per parameter of the block projections")
                .range(0.0, 8.0));
        add(ConfigKey.of("target_size_gb", FLOAT, null, "CVXQ: size of the whole quantized model in GB (1e9 bytes)")
                .range(0.0, NO_LIMIT));
        add(ConfigKey.of("cvxq_group_size", INT, 256, "CVXQ: rows per cluster").range(1.0, NO_LIMIT));
        add(ConfigKey.of("cvxq_iterations", INT, 1024, "CVXQ: calibration sequences processed (cycling over the data)")
                .range(1.0, NO_LIMIT));
        add(ConfigKey.of("cvxq_validation", STRING, null, "CVXQ: validation text file (.jsonl or .txt); the"
                + " quantization with the lowest perplexity on it is kept (default: the last)"));
        add(ConfigKey.of("cvxq_valid_size", INT, 64, "CVXQ: calibration sequences between validations")
                .range(1.0, NO_LIMIT));
        add(ConfigKey.of("cvxq_bias_correction", STRING, "all", "CVXQ: projections whose bias is corrected (all;"
                + " declarable: only those the family's config.json can give a bias, so a dense export keeps them all)")
                .choices("all", "declarable"));
        add(ConfigKey.of("paged_budget_mb", FLOAT, null,
                "device budget of the paged optimizer state in MiB, at least one page (0: all in host memory but"
                        + " one page; default: CUDA's free memory less a margin; unlimited on the CPU)").range(0.0, NO_LIMIT));
        add(ConfigKey.of("held_weights_mb", FLOAT, 0.0,
                "memory in MiB for the top blocks' dequantized base weights, kept from the forward pass to their"
                        + " recompute so that they are dequantized once per step instead of twice (recompute only)")
                .range(0.0, NO_LIMIT));
        add(ConfigKey.of("paged_page_kb", INT, 1024, "size of one page of paged optimizer state in KiB")
                .range(1.0, NO_LIMIT));
        add(ConfigKey.of("gradient_checkpointing_mode", STRING, "full",
                "what gradient checkpointing recomputes: full (every block) or selective (every block but the kept"
                        + " projections' base products, kept from the forward pass)").choices("full", "selective"));
        add(ConfigKey.of("gradient_checkpointing_budget_mb", FLOAT, null,
                "memory in MiB the selective mode may keep per micro-batch of per_device_train_batch_size x cutoff_len"
                        + " (default: every projection's product)").range(0.0, NO_LIMIT));
        add(ConfigKey.of("gradient_checkpointing_skip_layers", INT, 0,
                "top decoder layers gradient checkpointing leaves out: their forward pass keeps its activations for"
                        + " the backward pass instead of being recomputed (the same results bit for bit, one layer's"
                        + " activations more memory each; more than the model has: all)").range(0.0, NO_LIMIT));
        add(ConfigKey.of("device_memory_gb", FLOAT, null,
                "memory the run must fit, in GB (default: the GPU's, or the machine's on a CPU); inspect and train plan"
                        + " against it").range(0.0, NO_LIMIT));
        add(ConfigKey.of("export_dtype", STRING, "bfloat16", "dtype of exported weights").choices("bfloat16", "float16", "float32"));
        add(ConfigKey.of("merge_base", STRING, null, "weights the adapter is added to").choices("original", "dequantized"));
        add(ConfigKey.of("prompt", STRING, null, "text to continue"));
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

    /** ProcessorArguments: image, video and audio preprocessing. */
    private static void addMedia() {
        String multimodal = ONLY_WITH + "multimodal datasets, which are refused";
        add(ConfigKey.of("image_max_pixels", INT, 768 * 768, "largest image").inert(multimodal));
        add(ConfigKey.of("image_min_pixels", INT, 32 * 32, "smallest image").inert(multimodal));
        add(ConfigKey.of("image_do_pan_and_scan", BOOL, false, "Gemma 3 pan and scan").inert(multimodal));
        add(ConfigKey.of("crop_to_patches", BOOL, false, "InternVL patches").inert(multimodal));
        add(ConfigKey.of("video_max_pixels", INT, 256 * 256, "largest video frame").inert(multimodal));
        add(ConfigKey.of("video_min_pixels", INT, 16 * 16, "smallest video frame").inert(multimodal));
        add(ConfigKey.of("video_fps", FLOAT, 2.0, "sampled video frames per second").inert(multimodal));
        add(ConfigKey.of("video_maxlen", INT, 128, "most sampled video frames").inert(multimodal));
        add(ConfigKey.of("use_audio_in_video", BOOL, false, "use a video's audio").inert(multimodal));
        add(ConfigKey.of("audio_sampling_rate", INT, 16000, "audio sampling rate").inert(multimodal));
    }

    /** VllmArguments, SGLangArguments, KTransformersArguments: other inference and training engines. */
    private static void addEngines() {
        String vllm = ONLY_WITH + "infer_backend: vllm, which is refused";
        add(ConfigKey.of("vllm_maxlen", INT, 4096, "vLLM sequence length").inert(vllm));
        add(ConfigKey.of("vllm_gpu_util", FLOAT, 0.7, "vLLM GPU memory share").inert(vllm));
        add(ConfigKey.of("vllm_enforce_eager", BOOL, false, "vLLM without CUDA graphs").inert(vllm));
        add(ConfigKey.of("vllm_max_lora_rank", INT, 32, "vLLM's largest LoRA rank").inert(vllm));
        add(ConfigKey.of("vllm_config", ANY, null, "vLLM engine settings").inert(vllm));
        String sglang = ONLY_WITH + "infer_backend: sglang, which is refused";
        add(ConfigKey.of("sglang_maxlen", INT, 4096, "SGLang sequence length").inert(sglang));
        add(ConfigKey.of("sglang_mem_fraction", FLOAT, 0.7, "SGLang memory share").inert(sglang));
        add(ConfigKey.of("sglang_tp_size", INT, -1, "SGLang tensor parallelism").inert(sglang));
        add(ConfigKey.of("sglang_config", ANY, null, "SGLang engine settings").inert(sglang));
        add(ConfigKey.of("sglang_lora_backend", STRING, "triton", "SGLang LoRA kernels").inert(sglang));
        add(ConfigKey.of("use_kt", BOOL, false, "KTransformers MoE backend")
                .unsupported("KTransformers is not implemented"));
        String kt = ONLY_WITH + "use_kt, which is refused";
        for (String name : List.of("kt_cpu_activation", "kt_weight_path", "kt_non_expert_weight_path",
                "kt_expert_checkpoint_path")) {
            add(ConfigKey.of(name, STRING, null, "KTransformers setting").inert(kt));
        }
        add(ConfigKey.of("kt_use_lora_experts", BOOL, null, "KTransformers LoRA experts").inert(kt));
        add(ConfigKey.of("kt_lora_expert_num", INT, null, "KTransformers LoRA experts").inert(kt));
        add(ConfigKey.of("kt_lora_expert_intermediate_size", INT, null, "KTransformers LoRA experts").inert(kt));
        add(ConfigKey.of("kt_config", ANY, null, "KTransformers settings").inert(kt));
    }

    /**
     * The methods of FinetuningArguments besides LoRA: their switches refused, their settings without effect since
     * the method is refused.
     */
    private static void addMethods() {
        add(ConfigKey.of("use_llama_pro", BOOL, false, "LLaMA Pro block expansion")
                .unsupported("LLaMA Pro is not implemented"));
        add(ConfigKey.of("use_adam_mini", BOOL, false, "Adam-mini optimizer").unsupported("Adam-mini is not implemented"));
        add(ConfigKey.of("use_mca", BOOL, false, "Megatron-Core adapter").unsupported(ONE_DEVICE));
        add(ConfigKey.of("use_megatron_bridge", BOOL, false, "Megatron bridge").unsupported(ONE_DEVICE));
        add(ConfigKey.of("use_hyper_parallel", BOOL, false, "hyper parallelism").unsupported(ONE_DEVICE));
        add(ConfigKey.of("hyper_parallel_args", STRING, null, "hyper parallelism settings").inert(ONE_DEVICE));
        add(ConfigKey.of("hyper_parallel_cp_size", INT, 1, "context parallelism").inert(ONE_DEVICE));
        add(ConfigKey.of("use_muon", BOOL, false, "Muon optimizer").unsupported("Muon is not implemented"));
        add(ConfigKey.of("use_dft_loss", BOOL, false, "DFT loss").unsupported("the DFT loss is not implemented"));
        add(ConfigKey.of("use_asft_loss", BOOL, false, "ASFT loss").unsupported("the ASFT loss is not implemented"));
        add(ConfigKey.of("asft_alpha", FLOAT, 0.1, "ASFT weight").inert(ONLY_WITH + "use_asft_loss, which is refused"));
        add(ConfigKey.of("use_eaft_loss", BOOL, false, "EAFT loss").unsupported("the EAFT loss is not implemented"));
        add(ConfigKey.of("eaft_alpha", FLOAT, 1.0, "EAFT weight").inert(ONLY_WITH + "use_eaft_loss, which is refused"));
        String multimodal = "qlora4j trains text-only models";
        add(ConfigKey.of("freeze_vision_tower", BOOL, true, "freeze the vision tower").inert(multimodal));
        add(ConfigKey.of("freeze_multi_modal_projector", BOOL, true, "freeze the projector").inert(multimodal));
        add(ConfigKey.of("freeze_language_model", BOOL, false, "freeze the language model").inert(multimodal));
        String freeze = ONLY_WITH + "finetuning_type: freeze, which is refused";
        add(ConfigKey.of("freeze_trainable_layers", INT, 2, "layers trained by freeze").inert(freeze));
        add(ConfigKey.of("freeze_trainable_modules", STRING, "all", "modules trained by freeze").inert(freeze));
        add(ConfigKey.of("freeze_extra_modules", STRING, null, "extra modules trained by freeze").inert(freeze));
        String oft = ONLY_WITH + "finetuning_type: oft, which is refused";
        add(ConfigKey.of("module_dropout", FLOAT, 0.0, "OFT dropout").inert(oft));
        add(ConfigKey.of("oft_rank", INT, 0, "OFT rank").inert(oft));
        add(ConfigKey.of("oft_block_size", INT, 32, "OFT block size").inert(oft));
        add(ConfigKey.of("oft_target", STRING, "all", "OFT target modules").inert(oft));
        String rlhf = ONLY_WITH + "stage rm, ppo, dpo or kto, which are refused";
        for (String name : List.of("pref_beta", "pref_ftx", "pref_bco_weight", "dpo_label_smoothing",
                "kto_chosen_weight", "kto_rejected_weight", "simpo_gamma", "ppo_target", "ld_alpha")) {
            add(ConfigKey.of(name, FLOAT, rlhfDefault(name), "preference-training setting").inert(rlhf));
        }
        add(ConfigKey.of("pref_loss", STRING, "sigmoid", "DPO loss").inert(rlhf));
        add(ConfigKey.of("ppo_buffer_size", INT, 1, "PPO buffer").inert(rlhf));
        add(ConfigKey.of("ppo_epochs", INT, 4, "PPO epochs").inert(rlhf));
        add(ConfigKey.of("ppo_score_norm", BOOL, false, "PPO score normalization").inert(rlhf));
        add(ConfigKey.of("ppo_whiten_rewards", BOOL, false, "PPO reward whitening").inert(rlhf));
        for (String name : List.of("ref_model", "ref_model_adapters", "reward_model", "reward_model_adapters")) {
            add(ConfigKey.of(name, STRING, null, "reference or reward model").inert(rlhf));
        }
        add(ConfigKey.of("ref_model_quantization_bit", INT, null, "reference model bits").inert(rlhf));
        add(ConfigKey.of("reward_model_quantization_bit", INT, null, "reward model bits").inert(rlhf));
        add(ConfigKey.of("reward_model_type", STRING, "lora", "reward model kind").inert(rlhf));
        addOptimizerMethod("galore", Map.of("galore_target", "all", "galore_rank", 16, "galore_update_interval", 200,
                "galore_scale", 2.0, "galore_proj_type", "std", "galore_layerwise", false));
        addOptimizerMethod("apollo", Map.of("apollo_target", "all", "apollo_rank", 16, "apollo_update_interval", 200,
                "apollo_scale", 32.0, "apollo_proj", "random", "apollo_proj_type", "std", "apollo_scale_type", "channel",
                "apollo_layerwise", false, "apollo_scale_front", false));
        addOptimizerMethod("badam", Map.of("badam_mode", "layer", "badam_start_block", "", "badam_switch_mode",
                "ascending", "badam_switch_interval", 50, "badam_update_ratio", 0.05, "badam_mask_mode", "adjacent",
                "badam_verbose", 0));
        add(ConfigKey.of("use_swanlab", BOOL, false, "SwanLab tracking").inert("experiment trackers are not implemented;"
                + " metrics go to output_dir/metrics.jsonl"));
        for (String name : List.of("swanlab_project", "swanlab_workspace", "swanlab_run_name", "swanlab_mode",
                "swanlab_api_key", "swanlab_logdir", "swanlab_lark_webhook_url", "swanlab_lark_secret")) {
            add(ConfigKey.of(name, STRING, name.equals("swanlab_project") ? "llamafactory"
                    : name.equals("swanlab_mode") ? "cloud" : null, "SwanLab setting").inert(ONLY_WITH + "use_swanlab"));
        }
    }

    private static Double rlhfDefault(String name) {
        return switch (name) {
            case "pref_beta" -> 0.1;
            case "kto_chosen_weight", "kto_rejected_weight" -> 1.0;
            case "simpo_gamma" -> 0.5;
            case "ppo_target" -> 6.0;
            case "ld_alpha" -> null;
            default -> 0.0;
        };
    }

    /** {@code use_<method>} refused, the method's settings (given with their defaults) without effect. */
    private static void addOptimizerMethod(String method, Map<String, Object> settings) {
        add(ConfigKey.of("use_" + method, BOOL, false, method + " optimizer")
                .unsupported(method + " is not implemented"));
        settings.entrySet().stream().sorted(Map.Entry.comparingByKey()).forEach(e -> {
            Object value = e.getValue();
            ConfigKey.Type type = value instanceof Boolean ? BOOL : value instanceof Integer ? INT
                    : value instanceof Double ? FLOAT : STRING;
            add(ConfigKey.of(e.getKey(), type, "".equals(value) ? null : value, method + " setting")
                    .inert(ONLY_WITH + "use_" + method + ", which is refused"));
        });
    }

    /** The key of a base format's option, typed by its default. */
    private static ConfigKey formatOption(FormatOption o) {
        ConfigKey.Type type = o.defaultValue() instanceof Boolean ? BOOL : o.defaultValue() instanceof Integer ? INT
                : o.defaultValue() instanceof Double ? FLOAT : STRING;
        return ConfigKey.of(o.name(), type, o.defaultValue(), o.help()).choices(o.choices().toArray(String[]::new));
    }

    private static void add(ConfigKey key) {
        if (KEYS.putIfAbsent(key.name(), key.in(section)) != null) {
            throw new IllegalStateException("key registered twice: " + key.name());
        }
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
