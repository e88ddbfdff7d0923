/**
 * Optimization for the trainer, independent of any model: AdamW with torch.optim.AdamW semantics
 * under the {@code optim:} names of Hugging Face ({@link io.qlora4j.optim.Optim}), its state kept
 * in fixed-size pages that a device budget bounds (the rest in host memory, least recently used
 * out first, the next page prefetched) as float32 or as bitsandbytes' 8-bit blockwise codes, and
 * checkpointable from whichever tier it is in; global-norm gradient clipping and zeroing; and
 * HF-style learning-rate schedules. Parameters arrive as named float32 arrays whose gradients DJL
 * has accumulated.
 */
package io.qlora4j.optim;
