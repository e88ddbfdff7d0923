/**
 * The Llama family (Llama 1/2/3, TinyLlama, Mistral-style GQA) on DJL NDArrays with transformers'
 * semantics: the config, the blocks and model, RoPE with its scaling modes, the KV cache and generation.
 */
package io.qlora4j.model.llama;
