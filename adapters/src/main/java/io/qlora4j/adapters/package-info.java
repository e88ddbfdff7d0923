/**
 * LoRA adapters for the Llama model: {@link io.qlora4j.adapters.LoraLinear} wraps a frozen (dense or 4-bit) linear
 * layer with trainable float32 tensors that compute as its {@link io.qlora4j.adapters.AdapterVariant} says (LoRA,
 * DoRA; registered in {@link io.qlora4j.adapters.AdapterVariants}) and start as its
 * {@link io.qlora4j.adapters.AdapterInit} says (LoRA's, PiSSA, LoftQ; {@link io.qlora4j.adapters.AdapterInits}, the
 * base-rewriting ones applied while the base loads through an {@link io.qlora4j.adapters.InitialAdapter});
 * {@link io.qlora4j.adapters.LoraAdapters} attaches them to the targeted layers of every block and reads and
 * writes them as a PEFT adapter directory that Python PEFT loads unchanged, and
 * {@link io.qlora4j.adapters.LoraSettings} holds LLaMA-Factory's {@code lora_*} settings.
 * {@link io.qlora4j.adapters.MergedExport} streams a base checkpoint through a merge with one or more adapters
 * into a Hugging Face checkpoint (onto the original or the {@link io.qlora4j.adapters.MergeBase dequantized} 4-bit
 * weights), and {@link io.qlora4j.adapters.MergeCheck} compares the result with base + adapter.
 */
package io.qlora4j.adapters;
