/** Autoregressive generation with a KV cache, the token sampler, and perplexity, for a model of any family. */
package io.qlora4j.model.generation;
