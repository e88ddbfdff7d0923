/**
 * The model-family seam and the generic decoder: {@link io.qlora4j.model.decoder.CausalLM} and
 * {@link io.qlora4j.model.decoder.DecoderBlock} (what the rest of qlora4j drives),
 * {@link io.qlora4j.model.decoder.ModelFamily} (what a family implements), the architecture record
 * {@link io.qlora4j.model.decoder.DecoderConfig} with its shared config.json keys, and the generic transformer
 * built from it: blocks, norms, activations, rotary embedding, causal and sliding-window masks, the KV cache.
 */
package io.qlora4j.model.decoder;
