package io.qlora4j.trainer.config;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertFalse;
import static org.junit.jupiter.api.Assertions.assertNull;
import static org.junit.jupiter.api.Assertions.assertThrows;
import static org.junit.jupiter.api.Assertions.assertTrue;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

class JobConfigTest {
    @TempDir
    Path dir;

    /** The one line {@code file} is refused with. */
    private static String refusal(Path file) {
        return assertThrows(ConfigException.class, () -> JobConfig.load(file, List.of())).getMessage();
    }

    /** Asserts that a job file of {@code text} is refused with {@code expected}, FILE standing for its path. */
    private void assertRefused(String text, String expected) throws IOException {
        Path file = yaml(text);
        assertEquals(expected.replace("FILE", file.toString()), refusal(file));
    }

    private Path yaml(String text) throws IOException {
        Path p = dir.resolve("job.yaml");
        Files.writeString(p, text);
        return p;
    }

    @Test
    void defaultsFollowLlamaFactory() throws Exception {
        JobConfig c = JobConfig.of();
        assertEquals(8, c.integer("lora_rank"));
        assertEquals(0.0, c.number("lora_dropout"));
        assertEquals("all", c.string("lora_target"));
        assertEquals(2048, c.integer("cutoff_len"));
        assertEquals(1.0, c.number("max_grad_norm"));
        assertEquals(42, c.integer("seed"));
        assertEquals("nf4", c.string("quantization_type"));
        assertTrue(c.bool("double_quantization"));
        assertNull(c.integer("quantization_bit"));
        assertFalse(c.isSet("lora_rank"));
        // LLaMA-Factory leaves these to transformers' TrainingArguments (its field defaults, read in 4.55 and 5.12.1)
        assertEquals(8, c.integer("per_device_train_batch_size"));
        assertEquals(8, c.integer("per_device_eval_batch_size"));
        assertEquals(1, c.integer("gradient_accumulation_steps"));
        assertEquals(500, c.integer("logging_steps"));
        assertEquals(500, c.integer("save_steps"));
        assertEquals(5e-5, c.number("learning_rate"));
        assertEquals(3.0, c.number("num_train_epochs"));
        assertEquals("linear", c.string("lr_scheduler_type"));
        assertEquals(0.0, c.number("weight_decay"));
        assertEquals(0, c.integer("warmup_steps"));
    }

    @Test
    void overridesAfterTheFileWin() throws Exception {
        Path p = yaml("lora_rank: 16\nlearning_rate: 2.0e-4\nlora_target: [q_proj, v_proj]\n");
        JobConfig c = JobConfig.load(p, List.of("lora_rank=64"));
        assertEquals(64, c.integer("lora_rank"));
        assertEquals(2.0e-4, c.number("learning_rate"));
        assertEquals("q_proj,v_proj", c.string("lora_target"));
    }

    @Test
    void scientificNotationThatYamlReadsAsTextIsANumber() throws Exception {
        // YAML 1.1 reads 2e-4 (no dot) as a string; LLaMA-Factory files use it all the time.
        assertEquals(2e-4, JobConfig.load(yaml("learning_rate: 2e-4\n"), List.of()).number("learning_rate"));
    }

    @Test
    void axolotlAliasesMapToLlamaFactoryKeys() throws Exception {
        JobConfig c = JobConfig.load(yaml("base_model: /m\nlora_r: 32\nadapter: qlora\nsequence_len: 512\n"
                + "lora_target_linear: true\noptimizer: adamw_torch\nnum_epochs: 2\n"), List.of());
        assertEquals("/m", c.string("model_name_or_path"));
        assertEquals(32, c.integer("lora_rank"));
        assertEquals(4, c.integer("quantization_bit"));
        assertEquals("lora", c.string("finetuning_type"));
        assertEquals(512, c.integer("cutoff_len"));
        assertEquals(2.0, c.number("num_train_epochs"));
    }

    @Test
    void unknownKeySuggestsTheNearestKnownOne() throws Exception {
        Path p = yaml("lora_rnak: 8\n");
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.load(p, List.of()));
        assertEquals(p + ": unknown key 'lora_rnak' (did you mean 'lora_rank'?)", e.getMessage());
    }

    @Test
    void wrongTypeNamesKeyValueAndType() {
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of("lora_rank=eight"));
        assertEquals("command line: lora_rank: 'eight' is not an integer", e.getMessage());
    }

    @Test
    void outOfRangeNamesTheAllowedRange() {
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of("lora_dropout=1.5"));
        assertEquals("command line: lora_dropout: 1.5 is out of range (allowed: 0 to 0.999)", e.getMessage());
    }

    @Test
    void valueOutsideChoicesListsThem() {
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of("quantization_type=int3"));
        assertEquals("command line: quantization_type: 'int3' is not allowed (allowed: nf4, fp4)", e.getMessage());
    }

    @Test
    void plannedValueSaysItIsNotImplementedYet() {
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of("finetuning_type=freeze"));
        assertEquals("command line: finetuning_type: 'freeze' is not implemented yet (available: lora, full)",
                e.getMessage());
    }

    @Test
    void notImplementedKeyIsRefusedOnlyWhenItChangesSomething() throws Exception {
        assertFalse(JobConfig.of("export_legacy_format=false").bool("export_legacy_format"));
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of("export_legacy_format=true"));
        assertTrue(e.getMessage().startsWith("command line: export_legacy_format: not implemented yet"), e.getMessage());
    }

    @Test
    void missingFileAndBadYamlAreOneLine() throws Exception {
        Path missing = dir.resolve("nope.yaml");
        assertEquals(missing + ": no such file",
                refusal(missing));
        Path bad = yaml("lora_rank: [1, 2\n");
        String msg = refusal(bad);
        assertTrue(msg.startsWith(bad + ": not valid YAML at line"), msg);
        assertFalse(msg.contains("\n"), msg);
    }

    /**
     * What Jackson's YAML reading gets wrong is refused: it reads the first document only, an alias as its name and
     * a merge key as a key; a file of comments is an empty job, and bytes that are not UTF-8 are named.
     */
    @Test
    void yamlThatWouldBeMisreadIsRefusedInOneLine() throws Exception {
        assertRefused("lora_rank: 8\n---\nlora_rank: banana\nno_such_key: 1\n",
                "FILE: line 3: a second YAML document (after ---); a job file holds one");
        assertRefused("run_name: &out /tmp/x\noutput_dir: *out\n", "FILE: line 2: the alias *out is not supported in a"
                + " job file (anchors and aliases are not resolved); write the value out");
        assertRefused("base: &b {lora_rank: 8}\n<<: {lora_rank: 4}\n",
                "FILE: line 2: the merge key << is not supported in a job file; write the keys out");
        assertEquals(java.util.Map.of(), JobConfig.load(yaml("# nothing yet\n\n"), List.of()).explicitValues());
        Path latin1 = dir.resolve("latin1.yaml");
        Files.write(latin1, "run_name: caf\u00e9\n".getBytes(java.nio.charset.StandardCharsets.ISO_8859_1));
        assertEquals(latin1 + ": not UTF-8 text: byte 13 (0xe9) starts no UTF-8 character",
                refusal(latin1));
    }

    /** A value the file gives and qlora4j refuses can be cleared on the command line; the refusal names the file. */
    @Test
    void theCommandLineClearsARefusedValueBeforeItIsChecked() throws Exception {
        Path file = yaml("deepspeed: examples/deepspeed/ds_z3_config.json\nlora_rank: 8\n");
        assertTrue(refusal(file).startsWith(file + ": deepspeed: not implemented"), refusal(file));
        JobConfig cleared = JobConfig.load(file, List.of("deepspeed=null"));
        assertEquals(null, cleared.string("deepspeed"));
        assertEquals(8, cleared.integer("lora_rank"));
        assertTrue(assertThrows(ConfigException.class, () -> JobConfig.load(file, List.of("deepspeed=null",
                "lora_dropout=2"))).getMessage().startsWith("command line: lora_dropout: 2.0 is out of range"));
    }

    /** A quoted "null" in a file is the text null (PyYAML reads it so); key=null on the command line unsets a key. */
    @Test
    void aQuotedNullInAFileIsTextAndNullOnTheCommandLineUnsets() throws Exception {
        assertEquals("null", JobConfig.load(yaml("template: \"null\"\n"), List.of()).string("template"));
        assertEquals(null, JobConfig.load(yaml("template: null\n"), List.of()).string("template"));
        assertEquals(null, JobConfig.load(yaml("template: llama3\n"), List.of("template=null")).string("template"));
    }

    @Test
    void overrideWithoutEqualsIsRejected() {
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of("lora_rank"));
        assertEquals("command line: 'lora_rank' is not key=value", e.getMessage());
    }

    @Test
    void requireNamesTheMissingKey() {
        ConfigException e = assertThrows(ConfigException.class, () -> JobConfig.of().require("model_name_or_path"));
        assertEquals("missing required key model_name_or_path (Hugging Face model directory), e.g. model_name_or_path=...",
                e.getMessage());
    }

    @Test
    void yamlMappingOrListWhereAScalarIsExpectedIsRefusedByKey() throws Exception {
        Path map = yaml("output_dir: {a: 1}\n");
        assertEquals(map + ": output_dir: expected a string, got a YAML mapping",
                refusal(map));
        Path list = yaml("output_dir: [a, b]\n");
        assertEquals(list + ": output_dir: expected a string, got a YAML list",
                refusal(list));
        Path rank = yaml("lora_rank: {r: 8}\n");
        assertEquals(rank + ": lora_rank: expected an integer, got a YAML mapping",
                refusal(rank));
        Path nested = yaml("dataset: [a, [b]]\n");
        assertEquals(nested + ": dataset: expected a string or a list of strings, got a YAML list holding a list or"
                + " mapping", refusal(nested));
        assertEquals("a,b", JobConfig.load(yaml("dataset: [a, b]\n"), List.of()).string("dataset"));
    }

    @Test
    void keyGivenTwiceInAFileIsRefusedInsteadOfTheLastWinning() throws Exception {
        Path twice = yaml("lora_rank: 8\nlearning_rate: 1.0e-4\nlora_rank: 16\n");
        String msg = refusal(twice);
        assertEquals(twice + ": not valid YAML at line 3, column 10: Duplicate field 'lora_rank'", msg);
        Path alias = yaml("lora_r: 8\nlora_rank: 16\n");
        assertEquals(alias + ": lora_rank is given twice with different values (as lora_r and as lora_rank); keep one",
                refusal(alias));
        // a shorthand that sets a key is named as written
        assertRefused("load_in_4bit: true\nquantization_bit: 8\n", "FILE: quantization_bit is given twice with"
                + " different values (as load_in_4bit and as quantization_bit); keep one");
        assertRefused("adapter: qlora\nfinetuning_type: full\n", "FILE: finetuning_type is given twice with different"
                + " values (as adapter and as finetuning_type); keep one");
        // axolotl files say qlora twice over; agreeing spellings are fine, and the command line still overrides
        JobConfig agreeing = JobConfig.load(yaml("adapter: qlora\nload_in_4bit: true\n"), List.of("lora_rank=4"));
        assertEquals(4, agreeing.integer("quantization_bit"));
        assertEquals(8, JobConfig.load(yaml("lora_rank: 16\n"), List.of("lora_rank=4", "lora_rank=8"))
                .integer("lora_rank"));
    }

    /** Every init field of LLaMA-Factory's ModelArguments, DataArguments, FinetuningArguments, GeneratingArguments and
     * TrainingArguments at ff6d4d1 (their dataclasses, read field by field). */
    private static final String LLAMA_FACTORY_FIELDS = """
            adapter_folder adapter_name_or_path add_special_tokens add_tokens additional_target apollo_layerwise
            apollo_proj apollo_proj_type apollo_rank apollo_scale apollo_scale_front apollo_scale_type
            apollo_target apollo_update_interval asft_alpha audio_sampling_rate badam_mask_mode badam_mode
            badam_start_block badam_switch_interval badam_switch_mode badam_update_ratio badam_verbose buffer_size
            cache_dir compute_accuracy create_new_adapter crop_to_patches cutoff_len data_shared_file_system
            dataset dataset_dir default_system disable_gradient_checkpointing disable_shuffling do_sample
            double_quantization dpo_label_smoothing eaft_alpha early_stopping_steps enable_liger_kernel
            enable_thinking enable_torch_profiler eval_dataset eval_num_beams eval_on_each_dataset export_device
            export_dir export_hub_model_id export_legacy_format export_quantization_bit export_quantization_dataset
            export_quantization_maxlen export_quantization_nsamples export_size finetuning_type flash_attn fp8
            fp8_backend fp8_enable_fsdp_float8_all_gather freeze_extra_modules freeze_language_model
            freeze_multi_modal_projector freeze_trainable_layers freeze_trainable_modules freeze_vision_tower
            galore_layerwise galore_proj_type galore_rank galore_scale galore_target galore_update_interval
            hf_hub_token hyper_parallel_args hyper_parallel_cp_size ignore_pad_token_for_loss image_do_pan_and_scan
            image_max_pixels image_min_pixels include_effective_tokens_per_second infer_backend infer_dtype
            init_special_tokens interleave_probs kt_cpu_activation kt_expert_checkpoint_path
            kt_lora_expert_intermediate_size kt_lora_expert_num kt_non_expert_weight_path kt_use_lora_experts
            kt_weight_path kto_chosen_weight kto_rejected_weight ld_alpha length_penalty lora_alpha lora_dropout
            lora_rank lora_target loraplus_lr_embedding loraplus_lr_ratio low_cpu_mem_usage mask_history
            master_addr master_port max_length max_new_tokens max_samples media_dir mix_strategy mixture_of_depths
            model_name_or_path model_revision module_dropout moe_aux_loss_coef ms_hub_token neat_packing
            new_special_tokens_config num_beams offload_folder oft_block_size oft_rank oft_target om_hub_token
            overwrite_cache overwrite_output_dir packing pissa_convert pissa_init pissa_iter plot_loss
            ppo_buffer_size ppo_epochs ppo_score_norm ppo_target ppo_whiten_rewards pref_bco_weight pref_beta
            pref_ftx pref_loss preprocessing_batch_size preprocessing_num_workers preserve_thinking
            print_param_status profile_modules profiler_active_steps profiler_output_dir profiler_profile_memory
            profiler_record_shapes profiler_repeat profiler_wait_steps profiler_warmup_steps profiler_with_stack
            pure_bf16 quantization_bit quantization_device_map quantization_method quantization_type
            ray_init_kwargs ray_num_workers ref_model ref_model_adapters ref_model_quantization_bit
            repetition_penalty resize_vocab reward_model reward_model_adapters reward_model_quantization_bit
            reward_model_type rope_scaling sglang_config sglang_lora_backend sglang_maxlen sglang_mem_fraction
            sglang_tp_size shift_attn simpo_gamma skip_special_tokens split_special_tokens stage streaming
            swanlab_api_key swanlab_lark_secret swanlab_lark_webhook_url swanlab_logdir swanlab_mode
            swanlab_project swanlab_run_name swanlab_workspace temperature template tokenized_path tool_format
            top_k top_p train_from_scratch train_on_prompt trust_remote_code upcast_layernorm upcast_lmhead_output
            use_adam_mini use_apollo use_asft_loss use_audio_in_video use_badam use_dft_loss use_dora use_eaft_loss
            use_fast_tokenizer use_galore use_hyper_parallel use_kt use_kv_cache use_llama_pro use_mca
            use_megatron_bridge use_muon use_reentrant_gc use_rslora use_swanlab use_unsloth use_unsloth_gc
            use_v1_kernels val_size video_fps video_max_pixels video_maxlen video_min_pixels vllm_config
            vllm_enforce_eager vllm_gpu_util vllm_max_lora_rank vllm_maxlen
            """;

    /** Every field of transformers' Seq2SeqTrainingArguments: 5.x, and the 4.55-4.57 fields 5.0 removed. */
    private static final String TRANSFORMERS_FIELDS = """
            output_dir per_device_train_batch_size num_train_epochs max_steps learning_rate lr_scheduler_type
            lr_scheduler_kwargs warmup_steps optim optim_args weight_decay adam_beta1 adam_beta2 adam_epsilon
            optim_target_modules gradient_accumulation_steps average_tokens_across_devices max_grad_norm
            label_smoothing_factor bf16 fp16 bf16_full_eval fp16_full_eval tf32 gradient_checkpointing
            gradient_checkpointing_kwargs torch_compile torch_compile_backend torch_compile_mode use_liger_kernel
            liger_kernel_config use_cache neftune_noise_alpha torch_empty_cache_steps auto_find_batch_size
            logging_strategy logging_steps logging_first_step log_on_each_node logging_nan_inf_filter
            include_num_input_tokens_seen log_level log_level_replica disable_tqdm report_to run_name project
            trackio_space_id eval_strategy eval_steps eval_delay per_device_eval_batch_size prediction_loss_only
            eval_on_start eval_do_concat_batches eval_use_gather_object eval_accumulation_steps include_for_metrics
            batch_eval_metrics save_only_model save_strategy save_steps save_on_each_node save_total_limit
            enable_jit_checkpoint push_to_hub hub_token hub_private_repo hub_model_id hub_strategy hub_always_push
            hub_revision load_best_model_at_end metric_for_best_model greater_is_better ignore_data_skip
            restore_callback_states_from_checkpoint full_determinism seed data_seed use_cpu accelerator_config
            parallelism_config dataloader_drop_last dataloader_num_workers dataloader_pin_memory
            dataloader_persistent_workers dataloader_prefetch_factor remove_unused_columns label_names
            train_sampling_strategy length_column_name ddp_find_unused_parameters ddp_bucket_cap_mb
            ddp_broadcast_buffers ddp_backend ddp_timeout fsdp fsdp_config deepspeed debug skip_memory_metrics
            do_train do_eval do_predict resume_from_checkpoint warmup_ratio logging_dir local_rank
            overwrite_output_dir per_gpu_train_batch_size per_gpu_eval_batch_size save_safetensors no_cuda
            use_mps_device jit_mode_eval use_ipex fp16_opt_level half_precision_backend tpu_num_cores
            tpu_metrics_debug past_index fsdp_min_num_params tp_size fsdp_transformer_layer_cls_to_wrap adafactor
            group_by_length use_legacy_prediction_loop include_inputs_for_metrics fp16_backend push_to_hub_model_id
            push_to_hub_organization push_to_hub_token mp_parameters torchdynamo ray_scope dispatch_batches
            split_batches include_tokens_per_second sortish_sampler predict_with_generate generation_max_length
            generation_num_beams generation_config
            """;

    @Test
    void everyFieldOfLlamaFactorysAndTransformersArgumentClassesIsAKnownKey() {
        List<String> unknown = (LLAMA_FACTORY_FIELDS + " " + TRANSFORMERS_FIELDS).lines()
                .flatMap(line -> java.util.Arrays.stream(line.trim().split("\\s+"))).filter(name -> !name.isEmpty())
                .filter(name -> ConfigKeys.get(name) == null).toList();
        assertEquals(List.of(), unknown);
    }

    @Test
    void keysWithoutEffectAreCollectedForOneWarningUnlessLeftAtTheirDefault() throws Exception {
        JobConfig c = JobConfig.load(yaml("trust_remote_code: true\npreprocessing_num_workers: 16\n"
                + "dataloader_num_workers: 4\nreport_to: none\nddp_timeout: 180000000\nsave_only_model: false\n"), List.of());
        assertEquals(List.of("trust_remote_code", "dataloader_num_workers", "ddp_timeout"),
                c.inertKeys());
        assertEquals(List.of("report_to"), JobConfig.of("report_to=[wandb, tensorboard]").inertKeys());
    }

    @Test
    void neatPackingTurnsPackingOnAsLlamaFactoryDoes() throws Exception {
        JobConfig neat = JobConfig.load(yaml("neat_packing: true\n"), List.of());
        assertTrue(neat.isSet("packing") && neat.bool("packing"));
        assertEquals(List.of(), neat.inertKeys());
        assertFalse(JobConfig.of("neat_packing=false").isSet("packing"));
        assertTrue(JobConfig.of("neat_packing=true", "packing=true").bool("packing"));
        assertEquals("neat_packing: true packs examples (LLaMA-Factory turns packing on for it), but packing: false is"
                + " set too; drop one of them", assertThrows(ConfigException.class,
                        () -> JobConfig.of("packing=false", "neat_packing=true")).getMessage());
    }

    @Test
    void featuresQlora4jLacksAreRefusedByNameWhenSet() throws Exception {
        assertEquals("command line: deepspeed: not implemented (qlora4j trains in one process on one device; its paged"
                + " optimizer state is the memory saving (paged_adamw_*))",
                assertThrows(ConfigException.class, () -> JobConfig.of("deepspeed=ds_z3_config.json")).getMessage());
        assertEquals("command line: stage: 'dpo' is not implemented yet (available: sft, pt)",
                assertThrows(ConfigException.class, () -> JobConfig.of("stage=dpo")).getMessage());
        assertEquals("command line: use_badam: not implemented (badam is not implemented)",
                assertThrows(ConfigException.class, () -> JobConfig.of("use_badam=true")).getMessage());
        // at their defaults the same keys are accepted, as LLaMA-Factory's examples write them
        assertFalse(JobConfig.of("use_galore=false", "use_badam=false", "num_beams=1").isSet("deepspeed"));
    }

    @Test
    void deepspeedConfigGivenAsAMappingIsRefusedToo() throws Exception {
        Path p = yaml("deepspeed:\n  zero_optimization:\n    stage: 3\n");
        String message = refusal(p);
        assertTrue(message.startsWith(p + ": deepspeed: not implemented"), message);
    }

    @Test
    void transformersOptimizerAliasesMeanTheSameOptimizer() throws Exception {
        assertEquals("adamw_torch", JobConfig.of("optim=adamw_torch_fused").string("optim"));
        assertEquals("adamw_8bit", JobConfig.of("optim=adamw_bnb_8bit").string("optim"));
    }
}
