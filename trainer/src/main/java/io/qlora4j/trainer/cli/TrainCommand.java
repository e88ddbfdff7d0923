package io.qlora4j.trainer.cli;

import io.qlora4j.trainer.Trainer;
import io.qlora4j.trainer.TrainingResult;
import io.qlora4j.trainer.config.JobConfig;
import picocli.CommandLine.Command;

/** {@code qlora4j train}: fine-tunes a model as the job says and writes checkpoints and the adapter (or model). */
@Command(name = "train", description = {
    "Fine-tune LoRA adapters over a frozen base (4-bit with quantization_bit=4), or train every weight.",
    "Every weight: finetuning_type=full. LLaMA-Factory keys: model_name_or_path, dataset, output_dir,",
    "learning_rate, max_steps or num_train_epochs, per_device_train_batch_size, gradient_accumulation_steps,",
    "lora_rank, ...",
    "A progress bar on a terminal, log lines otherwise; metrics in output_dir/metrics.jsonl."})
final class TrainCommand extends JobCommand {
    @Override
    int run(JobConfig config) throws Exception {
        TrainingResult result = Trainer.train(config, out(), System.console() != null, dataLog());
        if (!result.completed()) {
            err().println("qlora4j train: " + result.failure());
            return 1;
        }
        return 0;
    }
}
