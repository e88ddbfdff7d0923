/**
 * The Gemma 2 family ({@code model_type: gemma2}): its config reading and writing, with the sandwich norms,
 * {@code query_pre_attn_scalar}, the attention and final soft-caps and the alternating sliding window; the model
 * itself is the generic decoder of {@code io.qlora4j.model.decoder}.
 */
package io.qlora4j.model.gemma2;
