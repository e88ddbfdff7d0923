/**
 * The Qwen3 family ({@code model_type: qwen3}): its config reading and writing, with the per-head q/k norms;
 * the model itself is the generic decoder of {@code io.qlora4j.model.decoder}.
 */
package io.qlora4j.model.qwen3;
