/**
 * The Mistral family ({@code model_type: mistral}): its config reading and writing, with every layer attending
 * through the sliding window; the model itself is the generic decoder of {@code io.qlora4j.model.decoder}.
 */
package io.qlora4j.model.mistral;
