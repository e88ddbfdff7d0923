/**
 * CVXQ (Young, "Foundations of Large Language Model Compression, Part 1: Weight Quantization", arXiv 2409.02026):
 * mixed-precision weight quantization whose bit depths come from a convex program. Each linear weight is cut into
 * partitions (a cluster of rows with similar sensitivity times one column); each partition gets a bit depth from 0
 * to 8 by the rule {@code B = clamp(0.5 * (log2 S^2 + log2 G^2 - log2 lambda), 0, 8)} (weight variance S^2, output
 * gradient variance G^2), {@code lambda} is set by dual ascent and then bisection so that the whole model meets a
 * size target, and the weights are coded by a uniform quantizer in the Laplace-companded domain. Plain numerics on
 * Java arrays ({@link io.qlora4j.quant.cvxq.BitAllocator}, {@link io.qlora4j.quant.cvxq.PartitionQuantizer},
 * {@link io.qlora4j.quant.cvxq.CvxqTensor}) plus the device-resident form that dequantizes with NDArray ops
 * ({@link io.qlora4j.quant.cvxq.NdCvxqTensor}); nothing here knows of models or files.
 */
package io.qlora4j.quant.cvxq;
