/**
 * Additive Quantization of Language Models (AQLM, Egiazarian et al. 2024) as the {@code aqlm} package and
 * transformers store it: every group of {@code out_group_size x in_group_size} weights is the sum of one entry
 * from each of {@code num_codebooks} learned codebooks of {@code 2^nbits_per_codebook} entries, times a
 * per-output-group scale. {@link io.qlora4j.quant.aqlm.AqlmScheme} names a scheme ("2x8 g8"),
 * {@link io.qlora4j.quant.aqlm.AqlmTensor} holds one quantized weight on the host,
 * {@link io.qlora4j.quant.aqlm.NdAqlmTensor} decodes it on a DJL device per use, and
 * {@link io.qlora4j.quant.aqlm.AqlmQuantizer} makes one from a weight and its calibration statistic
 * {@code X^T X} (residual k-means, beam search over codes, Adam over codebooks and scales).
 */
package io.qlora4j.quant.aqlm;
