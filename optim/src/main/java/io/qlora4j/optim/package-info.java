/** Optimizers with torch semantics (AdamW), global-norm gradient clipping and learning-rate schedules; later paged and 8-bit optimizer state. Knows nothing of Llama. */
package io.qlora4j.optim;
