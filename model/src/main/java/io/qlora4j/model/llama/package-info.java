/**
 * The Llama family ({@code model_type: llama}: Llama 1/2/3, TinyLlama and Llama-architecture checkpoints): its
 * config reading and writing; the model itself is the generic decoder of {@code io.qlora4j.model.decoder}.
 */
package io.qlora4j.model.llama;
