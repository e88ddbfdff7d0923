/**
 * The Qwen2 family ({@code model_type: qwen2}: Qwen2 and Qwen2.5): its config reading and writing, q/k/v biases and
 * Qwen's sliding-window rules; the model itself is the generic decoder of {@code io.qlora4j.model.decoder}.
 */
package io.qlora4j.model.qwen2;
