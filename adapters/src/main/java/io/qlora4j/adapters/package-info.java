/**
 * LoRA adapters for the Llama model: {@link io.qlora4j.adapters.LoraLinear} wraps a frozen (dense or 4-bit) linear
 * layer with trainable float32 matrices, {@link io.qlora4j.adapters.LoraAdapters} attaches them to the targeted
 * layers of every block and reads and writes them as a PEFT adapter directory that Python PEFT loads unchanged,
 * and {@link io.qlora4j.adapters.LoraSettings} holds LLaMA-Factory's {@code lora_*} settings.
 */
package io.qlora4j.adapters;
