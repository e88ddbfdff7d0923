/**
 * The integer formats of pre-quantized Hub checkpoints that LLaMA-Factory trains LoRA over: GPTQ
 * ({@code quant_method: gptq}, 2/3/4/8-bit codes packed along the input axis, a zero-point and fp16 scale per
 * group and output, an arbitrary group per input column through {@code g_idx}) and AWQ GEMM
 * ({@code quant_method: awq, version: gemm}, 4-bit codes packed along the output axis in AutoAWQ's interleaved
 * nibble order). Both dequantize to {@code fp16(scale * (q - zero))}, one rounding of an exact product, which
 * {@link io.qlora4j.quant.gptq.NdGroupedTensor} does on a DJL device per use from the packed bytes.
 */
package io.qlora4j.quant.gptq;
