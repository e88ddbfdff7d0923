/**
 * Training: {@link io.qlora4j.trainer.Trainer} runs a job from its config to its output;
 * {@link io.qlora4j.trainer.TrainStep} is one optimizer step's forward and backward (block-by-block recompute
 * or the whole graph, loss averaged over the labelled tokens of the accumulated batch). Internally: the loop
 * (accumulation, clipping, AdamW, schedule), the trainable weights (LoRA adapters or every weight), and the
 * output directory (checkpoints that appear whole, exact resume, metrics, progress, loss plot).
 */
package io.qlora4j.trainer;
