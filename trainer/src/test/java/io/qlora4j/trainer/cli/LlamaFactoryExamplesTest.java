package io.qlora4j.trainer.cli;

import static org.junit.jupiter.api.Assertions.assertEquals;
import static org.junit.jupiter.api.Assertions.assertTrue;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import io.qlora4j.trainer.TinyModel;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/**
 * LLaMA-Factory's own example jobs (examples/ at ff6d4d1), their key sets reproduced as written, run unchanged but
 * for model_name_or_path, dataset_dir, output_dir and the paths of a merge: QLoRA and LoRA SFT with qwen3_nothink,
 * pre-training without a template, the LoRA merge; the examples of stages and methods qlora4j lacks stop in one line
 * naming the key. The model is a tiny random Qwen-like one (ChatML tokens, a chat template) and the datasets are
 * dataset_info.json entries shaped like LLaMA-Factory's demos.
 */
class LlamaFactoryExamplesTest {
    @TempDir
    Path dir;

    private final CliRun cli = new CliRun();

    /** Vocabulary of the tiny model: the ChatML tokens Qwen's tokenizer adds, then words. */
    private static final List<String> VOCAB = List.of("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>", "user",
            "assistant", "system", "\n", "hi", "hello", "who", "are", "you", "I", "am", "a", "the", "name", "what",
            "is", "your", "text", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten");

    /** A tiny model with a Qwen-style tokenizer: eos <|im_end|>, pad <|endoftext|>, a Qwen3 Instruct chat template. */
    private Path qwenLikeModel() throws Exception {
        Path model = TinyModel.write(dir.resolve("Qwen3-4B-Instruct-2507"), 7);
        TinyModel.writeTokenizer(model, VOCAB, 4, Map.of("eos_token", "<|im_end|>", "pad_token", "<|endoftext|>",
                "chat_template", "{%- for message in messages %}{%- if '</think>' in content %}{%- set reasoning ="
                        + " content.split('</think>')[0].split('<think>')[-1] %}{%- endif %}{{- '<|im_start|>' +"
                        + " message.role + '\\n' + content + '<|im_end|>' + '\\n' }}{%- endfor %}"));
        return model;
    }

    /** dataset_info.json with LLaMA-Factory's demo entries and small files in their shapes. */
    private Path data() throws Exception {
        Path data = Files.createDirectories(dir.resolve("data"));
        Files.writeString(data.resolve("dataset_info.json"), """
                {
                  "identity": {"file_name": "identity.json"},
                  "alpaca_en_demo": {"file_name": "alpaca_en_demo.json"},
                  "c4_demo": {"file_name": "c4_demo.jsonl", "columns": {"prompt": "text"}},
                  "dpo_en_demo": {"file_name": "dpo_en_demo.json", "ranking": true, "formatting": "sharegpt",
                    "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}},
                  "kto_en_demo": {"file_name": "kto_en_demo.json", "formatting": "sharegpt",
                    "columns": {"messages": "messages", "kto_tag": "label"},
                    "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}}
                }
                """);
        Files.writeString(data.resolve("identity.json"), """
                [{"instruction": "hi", "input": "", "output": "hello I am {{name}}"},
                 {"instruction": "who are you", "input": "", "output": "I am {{name}} a the one"},
                 {"instruction": "what is your name", "input": "", "output": "I am {{name}}"}]
                """);
        Files.writeString(data.resolve("alpaca_en_demo.json"), """
                [{"instruction": "one two", "input": "", "output": "three four"},
                 {"instruction": "five", "input": "six", "output": "seven eight nine"},
                 {"instruction": "ten", "input": "", "output": "one"}]
                """);
        StringBuilder c4 = new StringBuilder();
        String[] words = {"one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten"};
        for (int doc = 0; doc < 3; doc++) {
            StringBuilder text = new StringBuilder();
            for (int w = 0; w < 2100; w++) {
                text.append(words[(doc + w) % words.length]).append(' ');
            }
            c4.append("{\"text\": \"").append(text.toString().strip()).append("\"}\n");
        }
        Files.writeString(data.resolve("c4_demo.jsonl"), c4);
        return data;
    }

    private Path yaml(String name, String text) throws Exception {
        Path file = dir.resolve(name);
        Files.writeString(file, text);
        return file;
    }

    /**
     * LLaMA-Factory's LoRA jobs of examples/train_lora and train_qlora as written there, key for key: the stage, the
     * dataset, the template (null: no template line, as the pretraining job has none) and, for the QLoRA job, the two
     * quantization lines vary; model_name_or_path, dataset_dir and output_dir point here.
     */
    private static String loraExample(Path model, String quantization, String stage, String dataset, String template,
            Path data, Path output) {
        return """
                ### model
                model_name_or_path: %s
                %strust_remote_code: true

                ### method
                stage: %s
                do_train: true
                finetuning_type: lora
                lora_rank: 8
                lora_target: all

                ### dataset
                dataset: %s
                dataset_dir: %s
                %scutoff_len: 2048
                max_samples: 1000
                preprocessing_num_workers: 16
                dataloader_num_workers: 4

                ### output
                output_dir: %s
                logging_steps: 10
                save_steps: 500
                plot_loss: true
                overwrite_output_dir: true
                save_only_model: false
                report_to: none  # choices: [none, wandb, tensorboard, swanlab, mlflow]

                ### train
                per_device_train_batch_size: 1
                gradient_accumulation_steps: 8
                learning_rate: 1.0e-4
                num_train_epochs: 3.0
                lr_scheduler_type: cosine
                warmup_ratio: 0.1
                bf16: true
                ddp_timeout: 180000000
                resume_from_checkpoint: null
                """.formatted(model, quantization, stage, dataset, data,
                template == null ? "" : "template: " + template + "\n", output);
    }

    /** examples/train_lora/qwen3_lora_sft.yaml (and with the two quantization keys, train_qlora's otfq job). */
    private static String sft(Path model, Path data, Path output, String quantization) {
        return loraExample(model, quantization, "sft", "identity,alpaca_en_demo", "qwen3_nothink", data, output);
    }

    private static final String OTFQ = "quantization_bit: 4  # choices: [8 (bnb/hqq/eetq), 4 (bnb/hqq), 3 (hqq), 2 (hqq)]\n"
            + "quantization_method: bnb  # choices: [bnb, hqq, eetq]\n";

    @Test
    void loraAndQloraSftExamplesTrainAndTheMergeExampleExports() throws Exception {
        Path model = qwenLikeModel();
        Path data = data();
        Path lora = dir.resolve("saves/qwen3-4b/lora/sft");
        assertEquals(0, cli.run("train", yaml("qwen3_lora_sft.yaml", sft(model, data, lora, "")).toString()), cli.err());
        // 6 records, 8 micro-batches a step: ceil(3 epochs x max(6 / 8, 1)) = 3 steps
        assertTrue(cli.out().contains("trained 3 steps"), cli.out());
        assertTrue(cli.err().contains("warning: accepted without effect in a single-process qlora4j run (README.md, Job"
                + " keys): trust_remote_code, dataloader_num_workers, ddp_timeout"), cli.err());
        assertTrue(Files.isRegularFile(lora.resolve("adapter_model.safetensors")));
        assertTrue(Files.isRegularFile(lora.resolve("training_loss.png")));

        Path qlora = dir.resolve("saves/qwen3-4b/qlora/sft");
        assertEquals(0, cli.run("train", yaml("qwen3_lora_sft_otfq.yaml", sft(model, data, qlora, OTFQ)).toString()),
                cli.err());
        assertTrue(cli.out().contains("trained 3 steps"), cli.out());

        Path merged = dir.resolve("saves/qwen3_sft_merged");
        assertEquals(0, cli.run("export", yaml("merge_qwen3_lora_sft.yaml", """
                ### Note: DO NOT use quantized model or quantization_bit when merging lora adapters

                ### model
                model_name_or_path: %s
                adapter_name_or_path: %s
                template: qwen3_nothink
                trust_remote_code: true

                ### export
                export_dir: %s
                export_size: 5
                export_device: cpu  # choices: [cpu, auto]
                export_legacy_format: false
                """.formatted(model, lora, merged)).toString()), cli.err());
        JsonNode config = new ObjectMapper().readTree(merged.resolve("config.json").toFile());
        assertTrue(config.has("torch_dtype") && config.has("rope_theta"), config.toString());
    }

    @Test
    void pretrainingExampleTrainsOnPlainTextWithTheTokenizersTemplate() throws Exception {
        Path model = qwenLikeModel();
        Path data = data();
        Path output = dir.resolve("saves/qwen3-4b/lora/pretrain");
        assertEquals(0, cli.run("train", yaml("qwen3_lora_pretrain.yaml",
                loraExample(model, "", "pt", "c4_demo", null, data, output)).toString()), cli.err());
        assertTrue(cli.out().contains("template: not set: using qwen3_nothink, recognised from the chat_template"),
                cli.out());
        // 3 documents of 2,100 words + eos; the example's 16 preprocessing workers make 3 shards (datasets lowers
        // num_proc to the 3 records), each document packed apart into one block of cutoff_len (its 53 more dropped)
        assertTrue(cli.out().contains("c4_demo: 3 records kept, 0 skipped"), cli.out());
        assertTrue(cli.out().contains("trained 3 steps"), cli.out());
    }

    /**
     * An example of a stage or method qlora4j lacks: its first refused key stops the job with one error line
     * ({@code FILE} in {@code expected} stands for the job file; a warning naming accepted keys may come first).
     */
    private void refused(String name, String keys, String expected) throws Exception {
        Path model = qwenLikeModel();
        Path data = data();
        String job = "model_name_or_path: " + model + "\ntrust_remote_code: true\n" + keys + "dataset_dir: " + data
                + "\noutput_dir: " + dir.resolve("saves").resolve(name) + "\nlogging_steps: 10\nsave_steps: 500\n"
                + "plot_loss: true\noverwrite_output_dir: true\nreport_to: none\nper_device_train_batch_size: 1\n"
                + "gradient_accumulation_steps: 8\nnum_train_epochs: 3.0\nlr_scheduler_type: cosine\nwarmup_ratio: 0.1\n"
                + "bf16: true\nddp_timeout: 180000000\n";
        Path file = yaml(name, job);
        assertEquals(1, cli.run("train", file.toString()), cli.out());
        assertEquals(List.of("qlora4j train: " + expected.replace("FILE", file.toString())),
                cli.err().lines().filter(line -> !line.startsWith("warning: ")).toList());
    }

    @Test
    void examplesOfStagesQlora4jLacksAreRefusedByTheStageKey() throws Exception {
        String method = "do_train: true\nfinetuning_type: lora\nlora_rank: 8\nlora_target: all\n";
        refused("qwen3_lora_dpo.yaml", "stage: dpo\n" + method + "pref_beta: 0.1\npref_loss: sigmoid\n"
                + "dataset: dpo_en_demo\ntemplate: qwen3_nothink\ncutoff_len: 2048\nlearning_rate: 5.0e-6\n",
                "FILE: stage: 'dpo' is not implemented yet (available: sft, pt)");
        refused("qwen3_lora_kto.yaml", "stage: kto\n" + method + "pref_beta: 0.1\ndataset: kto_en_demo\n"
                + "template: qwen3_nothink\n", "FILE: stage: 'kto' is not implemented yet (available: sft, pt)");
        refused("qwen3_lora_reward.yaml", "stage: rm\n" + method + "dataset: dpo_en_demo\ntemplate: qwen3_nothink\n",
                "FILE: stage: 'rm' is not implemented yet (available: sft, pt)");
        refused("qwen3_lora_ppo.yaml", "stage: ppo\n" + method + "reward_model: saves/qwen3-4b/lora/reward\n"
                + "reward_model_type: lora\ndataset: identity,alpaca_en_demo\ntemplate: qwen3_nothink\n",
                "FILE: stage: 'ppo' is not implemented yet (available: sft, pt)");
    }

    @Test
    void examplesOfMethodsQlora4jLacksAreRefusedByTheirKey() throws Exception {
        String sft = "stage: sft\ndo_train: true\n";
        String data = "dataset: identity,alpaca_en_demo\ntemplate: llama3\ncutoff_len: 2048\nmax_samples: 1000\n"
                + "overwrite_cache: true\npreprocessing_num_workers: 16\ndataloader_num_workers: 4\n";
        refused("galore_llama3_full_sft.yaml", sft + "finetuning_type: full\nuse_galore: true\ngalore_layerwise: true\n"
                + "galore_target: all\ngalore_rank: 128\ngalore_scale: 2.0\n" + data + "pure_bf16: true\n",
                "FILE: use_galore: not implemented (galore is not implemented)");
        refused("qwen3_lora_sft_ds3.yaml", sft + "finetuning_type: lora\nlora_rank: 8\nlora_target: all\n"
                + "deepspeed: examples/deepspeed/ds_z3_config.json  # choices: [ds_z0_config.json, ds_z2_config.json,"
                + " ds_z3_config.json]\n" + data, "FILE: deepspeed: not implemented (qlora4j trains in one process on one"
                + " device; its paged optimizer state is the memory saving (paged_adamw_*))");
        refused("badam_llama3_full_sft.yaml", sft + "finetuning_type: full\nuse_badam: true\nbadam_mode: layer\n"
                + "badam_switch_mode: ascending\nbadam_switch_interval: 50\nbadam_verbose: 2\n" + data,
                "FILE: use_badam: not implemented (badam is not implemented)");
        refused("qwen3vl_lora_sft.yaml", "image_max_pixels: 262144\nvideo_max_pixels: 16384\n" + sft
                + "finetuning_type: lora\nlora_rank: 8\nlora_target: all\ndataset: mllm_demo,identity,alpaca_en_demo\n"
                + "template: qwen3_vl_nothink\ncutoff_len: 2048\n",
                "template: LLaMA-Factory's template 'qwen3_vl_nothink' is not implemented; implemented: alpaca, chatml,"
                        + " default, empty, gemma, gemma2, llama2, llama3, ministral, mistral, mistral_small, phi, phi4,"
                        + " phi4_mini, qwen, qwen3, qwen3_nothink");
    }
}
