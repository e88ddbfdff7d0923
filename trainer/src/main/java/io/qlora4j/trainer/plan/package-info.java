/**
 * Memory planning: the device and host memory a training run needs as configured, part by part, from the model's
 * config alone ({@link io.qlora4j.trainer.plan.MemoryPlanner}), the activations of one micro-batch
 * ({@link io.qlora4j.trainer.plan.ActivationModel}), the process's measured overhead
 * ({@link io.qlora4j.trainer.plan.ProcessOverhead}) and the verdict with the settings that would make a plan fit
 * ({@link io.qlora4j.trainer.plan.PlanReport}). {@code qlora4j inspect} prints it; {@code qlora4j train} checks it
 * before it loads the model.
 */
package io.qlora4j.trainer.plan;
