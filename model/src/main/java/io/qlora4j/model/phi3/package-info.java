/**
 * The Phi-3 family ({@code model_type: phi3}: Phi-3, Phi-3.5, Phi-4-mini): its config reading and writing, with the
 * fused qkv and gate/up projections, partial rotary and longrope; the model itself is the generic decoder of
 * {@code io.qlora4j.model.decoder}.
 */
package io.qlora4j.model.phi3;
