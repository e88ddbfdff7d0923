/**
 * The Gemma family ({@code model_type: gemma}): its config reading and writing, with Gemma's {@code (1 + w)}
 * RMSNorm, scaled embeddings and GELU MLP; the model itself is the generic decoder of
 * {@code io.qlora4j.model.decoder}.
 */
package io.qlora4j.model.gemma;
