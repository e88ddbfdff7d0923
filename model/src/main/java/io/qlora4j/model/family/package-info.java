/**
 * The model-family registry ({@code model_type} to {@link io.qlora4j.model.decoder.ModelFamily}) and the loader
 * that streams a Hugging Face directory of any registered family into a
 * {@link io.qlora4j.model.decoder.CausalLM}.
 */
package io.qlora4j.model.family;
