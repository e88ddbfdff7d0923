/**
 * Optimization for the trainer, independent of any model: AdamW with torch.optim.AdamW semantics
 * and its checkpointable state, global-norm gradient clipping and zeroing, and HF-style
 * learning-rate schedules. Parameters arrive as named float32 arrays whose gradients DJL has
 * accumulated.
 */
package io.qlora4j.optim;
