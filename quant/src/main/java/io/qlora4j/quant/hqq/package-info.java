/**
 * HQQ (half-quadratic quantization, hqq 0.2.8) as LLaMA-Factory uses it through transformers: 1 to 8-bit codes with
 * a scale and zero point per group of 64 along axis 0, zero points refined by HQQ's proximal solver on its CPU float32
 * path ({@link io.qlora4j.quant.hqq.HqqQuantizer}), HQQ's bit packings ({@link io.qlora4j.quant.hqq.HqqPacking}),
 * the {@code HQQLinear} state dict and {@code quantization_config} ({@link io.qlora4j.quant.hqq.HqqStateDict}), and
 * dequantization on a DJL device ({@link io.qlora4j.quant.hqq.NdHqqTensor}).
 */
package io.qlora4j.quant.hqq;
