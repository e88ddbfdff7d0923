/**
 * Number formats for frozen base weights: 4-bit NormalFloat and FP4 codebooks, blockwise
 * quantization that reproduces bitsandbytes' CUDA kernels byte for byte, double quantization of
 * the scales with the 8-bit dynamic map, packed tensors ({@link io.qlora4j.quant.QuantizedTensor})
 * and their device-resident form that dequantizes with NDArray ops
 * ({@link io.qlora4j.quant.NdQuantizedTensor}).
 */
package io.qlora4j.quant;
